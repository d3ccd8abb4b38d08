"""Two models a CIFAR-10 project (32x32 images) might train; rfa-lint tells them apart.

    rfa-lint examples/cifar_models.py --res 32

`imagenet_resnet18` is torchvision's ResNet-18, designed for 224px ImageNet images: at 32px
most of its later convolutions already see the whole image (findings on its line).
`CifarNet` grows its receptive field to exactly 32px by its last convolution: no findings.
"""

import torch
from torch import nn
from torchvision.models import resnet18


def imagenet_resnet18() -> nn.Module:
    return resnet18(num_classes=10)


class CifarNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),  # receptive field 3
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),  # 5
            nn.MaxPool2d(2),  # 6, stride product 2
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),  # 10
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),  # 14
            nn.MaxPool2d(2),  # 16, stride product 4
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),  # 24
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(),  # 32: the whole 32px image, no more
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))
