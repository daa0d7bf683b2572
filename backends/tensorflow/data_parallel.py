"""Data parallelism in TensorFlow: tf.distribute.MirroredStrategy, one replica per device, in one process.

What TensorFlow's custom-training-loop tutorial with MirroredStrategy writes: the model's variables are
created under strategy.scope() (each becomes a MirroredVariable, one copy per device), strategy.run() runs
the step on every replica with its own shard of the batch, each replica's loss is its shard's summed
losses over the GLOBAL batch size (tf.nn.compute_average_loss), and the optimizer's apply_gradients
all-reduces (sums) the replicas' gradients before the identical update on every copy. The model is the
single-device task's (backends/tensorflow/classifier.py, backends/tensorflow/cnn.py).

On the CPU the replicas are N logical CPU devices, made with tf.config.set_logical_device_configuration
before TensorFlow's runtime starts; they share the process's thread pools, so the inter-op pool gets one
thread per replica (each replica's ops can then run beside the other's). The all-reduce happens inside the
compiled step: its time cannot be told apart from the step's.
"""

import numpy as np
import tensorflow as tf

from tasks.data_parallel import Result, gpus_needed

from . import classifier, cnn


def devices_for(problem, device):
    """The replicas' devices; must run before TensorFlow's runtime starts (the first op)."""
    n = problem.replicas
    if device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        gpus_needed(n, len(gpus))
        return [f"/gpu:{i}" for i in range(n)]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    # One inter-op thread per replica (times the intra-op threads asked for), or the replicas take turns.
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    if intra:
        tf.config.threading.set_inter_op_parallelism_threads(intra * n)
    return [f"/cpu:{i}" for i in range(n)]


def train(problem, device, variant):
    devices = devices_for(problem, device)
    # On the CPU, MirroredStrategy reduces through one device (tf.distribute.ReductionToOneDevice); on GPUs
    # its default is NCCL all-reduce.
    strategy = tf.distribute.MirroredStrategy(devices)
    h = problem.hyper
    with strategy.scope():  # variables created here are mirrored on every replica
        if problem.model == "classifier":
            model = classifier.MLP(problem.params)
        else:
            model = cnn.Net(cnn.to_nhwc(problem.params))
        # Keras keeps lr and momentum in floatx: float64 for a float64 run. The momentum goes in as a numpy
        # float64: tf.cast would make a plain 0.9 a float32 constant first (0.8999999761581421).
        tf.keras.backend.set_floatx(problem.precision)
        optimizer = tf.keras.optimizers.SGD(learning_rate=h["lr"], momentum=np.float64(h["momentum"]))
        optimizer.build(model.trainable_variables)

    X = tf.constant(problem.x_train if problem.model == "classifier" else problem.x_train.transpose(0, 2, 3, 1))
    Y = tf.constant(problem.y_train)

    def replica_step(rows):
        with tf.GradientTape() as tape:
            logits = model(tf.gather(X, rows))
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.gather(Y, rows), logits=logits)
            # This shard's share of the global batch's mean loss: summed over the replicas, the mean.
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=problem.batch_size)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # all-reduce (sum), then update
        return loss

    @tf.function
    def distributed_step(rows):
        per_replica = strategy.run(replica_step, args=(rows,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    for rows in problem.batches:
        # Each replica's shard of this batch, placed on its device.
        shards = strategy.experimental_distribute_values_from_function(
            lambda context, rows=rows: tf.constant(problem.shard(rows, context.replica_id_in_sync_group)))
        yield float(distributed_step(shards))

    all_names = classifier.NAMES if problem.model == "classifier" else cnn.NAMES
    weights = {name: getattr(model, name).numpy() for name in all_names}  # the first replica's copy
    params = weights if problem.model == "classifier" else cnn.to_spec(weights)
    mapping = {"replicas": strategy.num_replicas_in_sync, "processes": 1,
               "threads_per_replica": tf.config.threading.get_intra_op_parallelism_threads() or "default",
               "devices": devices,
               "collective": ("NCCL all-reduce" if device == "gpu" else "ReductionToOneDevice (sum on /cpu:0), "
                              "in-process"),
               "api": "tf.distribute.MirroredStrategy, logical CPU devices" if device == "cpu"
               else "tf.distribute.MirroredStrategy"}
    return Result(params=params, mapping=mapping, sync_seconds=None)

