"""Child process of ``test_host_memory.py``: trains a one-layer model with
``lionr.Lion`` and prints the minor page faults of each of the last steps.

Usage: ``python host_memory_child.py retain|default``. The backend is the
one ``KERAS_BACKEND`` names.
"""

import json
import resource
import sys

import lionr

if sys.argv[1] == "retain":
    assert lionr.retain_host_memory()

import numpy as np  # noqa: E402

import keras  # noqa: E402

# A 4096 x 2048 kernel: its gradient (32 MiB) is above glibc's largest
# adaptive mmap threshold, so by default it is mapped afresh at every step.
x = np.ones((8, 4096), "float32")
y = np.zeros((8, 2048), "float32")
model = keras.Sequential([keras.Input((4096,)), keras.layers.Dense(2048)])
model.compile(optimizer=lionr.Lion(1e-4), loss="mse")
for _ in range(6):
    model.train_on_batch(x, y)
faults = []
for _ in range(16):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.train_on_batch(x, y)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
