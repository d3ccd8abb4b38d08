"""The reference for ``explain``'s MACs: ``torch.utils.flop_counter.FlopCounterMode``.

It counts FLOPs (2 per multiply-accumulate) of the aten ops that multiply weights or tensors:
convolutions and the matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm``), and scaled
dot-product attention where it has a formula for the kernel that runs.  On the CPU, SDPA runs
``_scaled_dot_product_flash_attention_for_cpu``, which it has none for: that one is counted here
with its own formula for the other kernels (both query-key and weight-value products).  The
model runs on the meta device: shapes only, no weights needed, any size cheap.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

aten = torch.ops.aten


def _cpu_sdpa(query, key, value, *_, out_shape=None, **__) -> int:
    return sdpa_flop_count(query, key, value)


def reference_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates per sample of ``model`` on an input of ``shape`` (batch first), as
    FlopCounterMode counts them; the model is moved to the meta device."""
    counter = FlopCounterMode(display=False, custom_mapping={
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa})
    model = model.to("meta").eval()
    with counter, torch.no_grad():
        model(torch.empty(shape, device="meta"))
    return counter.get_total_flops() // 2 // shape[0]
