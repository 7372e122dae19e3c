"""lionr across processes and hosts with keras.distribution (jax).

Every process runs this same script with its own ``--process-id``; process
0's address is the coordinator. Each process:

1. fixes its local devices and (on CPU) picks gloo collectives, then calls
   ``keras.distribution.initialize`` before Keras builds anything;
2. sets one ``keras.distribution.ModelParallel`` over the devices of all
   processes (a ``("batch", "model")`` mesh; the large kernels sharded over
   "model", the batch split over "batch");
3. trains with lionr's int8 momentum from a batched ``tf.data.Dataset``
   (Keras hands each process its part of every global batch).

The momentum of each parameter, int8 blocks included, lives on the devices
that hold the parameter's shard. On one machine the script can start all
the processes itself, on simulated CPU devices over loopback::

    python demo/distributed.py --launch 2 --local-devices 4

On real hosts (GPUs: leave out --local-devices), on host i of N::

    python demo/distributed.py --coordinator HOST0:PORT --processes N --process-id i
"""

import argparse
import os
import socket
import subprocess
import sys


def train(args):
    import jax

    if args.local_devices:  # CPU: simulated devices, gloo collectives
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    keras.distribution.initialize(
        job_addresses=args.coordinator,
        num_processes=args.processes,
        process_id=args.process_id,
    )
    import numpy as np
    import tensorflow as tf

    import lionr

    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh(
        (args.processes, len(devices) // args.processes),
        ["batch", "model"],
        devices,
    )
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[".*up/kernel"] = (None, "model")
    layout_map[".*up/bias"] = ("model",)
    layout_map[".*down/kernel"] = ("model", None)
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
    )
    keras.utils.set_random_seed(0)  # the same initial weights everywhere
    model = keras.Sequential(
        [
            keras.Input((256,)),
            keras.layers.Dense(1024, activation="relu", name="up"),
            keras.layers.Dense(256, name="down"),
        ]
    )
    optimizer = lionr.optimizer_lion(
        learning_rate=1e-3, weight_decay=0.1, momentum_dtype="int8"
    )
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)  # every process reads the same dataset
    x = rng.normal(size=(1024, 256)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x)).batch(64)
    history = model.fit(data, epochs=3, verbose=0)
    skip = {id(optimizer.iterations), id(optimizer._learning_rate)}
    held = sum(
        v.value.addressable_shards[0].data.nbytes
        for v in optimizer.variables
        if id(v) not in skip
    )
    params = model.count_params()
    print(
        f"process {jax.process_index()} of {jax.process_count()}: "
        f"{len(devices)} devices, loss {history.history['loss'][-1]:.4f}, "
        f"optimizer state on one of its devices {held / params:.3f} B/param",
        flush=True,
    )


def launch(args):
    """Start ``args.launch`` processes of this script on this machine."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, KERAS_BACKEND="jax")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--coordinator", f"127.0.0.1:{port}",
             "--processes", str(args.launch), "--process-id", str(i),
             "--local-devices", str(args.local_devices)],
            env=env,
        )
        for i in range(args.launch)
    ]
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    sys.exit(max(codes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coordinator", help="HOST:PORT of process 0")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--local-devices", type=int, default=0,
                        help="simulated CPU devices per process (0: real devices)")
    parser.add_argument("--launch", type=int, default=0,
                        help="start this many local processes over loopback")
    args = parser.parse_args()
    if args.launch:
        return launch(args)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if args.local_devices:
        os.environ["XLA_FLAGS"] = (
            f"--xla_force_host_platform_device_count={args.local_devices}"
        )
    return train(args)


if __name__ == "__main__":
    main()
