"""Graph build time and memory: rfa-lint's PyTorch frontend vs rfa-toolbox 1.7.0.

Each measurement runs in a fresh child process.  Memory is the child's peak RSS minus its RSS
right after ``import torch, torchvision``; time covers building the model and its graph, each
tool the way it is meant to be used (ours on the meta device, rfa-toolbox on real weights,
which its JIT trace needs).  "cold" is the first graph in the process (it pays one-time costs
such as torch loading its meta kernels); "warm" builds the same model again, which is what the
linter pays per model when it analyses many in one process.
    python benchmarks/bench_torch_graph.py
"""

import json
import os
import subprocess
import sys

MODELS = ("resnet50", "vgg16", "densenet121")

CHILD = """
import json, resource, sys, time
import collections, collections.abc
collections.Sequence = collections.abc.Sequence  # rfa-toolbox 1.7.0 predates Python 3.10
sys.modules["tensorflow"] = None  # keep rfa-toolbox's keras part from loading
import torch, torchvision

def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

torch.set_num_threads(1)
tool, name = sys.argv[1:]
if tool == "rfa-lint":
    from rfa_lint.frontends.torch import building_context, create_graph_from_pytorch_model

    def build():
        with building_context():
            model = torchvision.models.get_model(name)
        return create_graph_from_pytorch_model(model)
else:
    from rfa_toolbox import create_graph_from_pytorch_model

    def build():
        return create_graph_from_pytorch_model(torchvision.models.get_model(name).eval())

baseline = rss_mib()
seconds = []
for _ in range(2):
    start = time.perf_counter()
    graph = build()
    seconds.append(time.perf_counter() - start)
    del graph
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cold": seconds[0], "warm": seconds[1], "mib": peak - baseline}))
"""


def measure(tool, name):
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", CHILD, tool, name], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{tool} on {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


if __name__ == "__main__":
    print("model        tool         cold ms  warm ms  peak MiB over import")
    for name in MODELS:
        ours, seed = measure("rfa-lint", name), measure("rfa-toolbox", name)
        for tool, run in (("rfa-lint", ours), ("rfa-toolbox", seed)):
            cold, warm = run["cold"] * 1000, run["warm"] * 1000
            print(f"{name:12} {tool:12} {cold:7.0f}  {warm:7.0f}  {run['mib']:8.0f}")
        print(
            f"{'':12} ratio        {seed['cold'] / ours['cold']:6.1f}x  {seed['warm'] / ours['warm']:6.1f}x"
            f"  {seed['mib'] / max(ours['mib'], 1):7.1f}x less memory"
        )
