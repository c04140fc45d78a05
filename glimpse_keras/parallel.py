"""Data parallel training on JAX through `keras.distribution`, on one host or several.

`train.strategy: data_parallel` (`train.py --strategy data_parallel`) gives
every device of the job a replica of the model and splits each global batch
(`train.stages.*.batch_size`) between them:

- one process: a `DataParallel` distribution over every local device (all
  GPUs, or the virtual CPU devices of
  `XLA_FLAGS=--xla_force_host_platform_device_count=N`);
- several processes (one per host, or one per GPU): each process first
  joins the job (`join_cluster`, which calls `keras.distribution.initialize`
  with the coordinator's address, the number of processes and its own id,
  from flags or KERAS_DISTRIBUTION_JOB_ADDRESSES,
  KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID); the
  same `DataParallel` then spans the devices of every process.

What Keras 3.15 does with it on JAX (keras/src/backend/jax/trainer.py and
keras/src/distribution/): variables created while the distribution is set
are replicated on the device mesh; `fit`'s iterator places every batch on
the mesh split along its first axis, and with several processes the tf.data
adapter first keeps each process's part of every global batch
(`Distribution.distribute_dataset`: `rebatch` to the per-process size, then
`shard`); `fit` jits the model's own `train_step`
(`glimpse_keras/backends/jax_backend.py`) on those inputs with the state's
shardings as outputs, and XLA's SPMD partitioner adds the cross-device sums.
The loss is the mean over the global batch and BatchNorm's batch statistics
are those of the global batch, so one step on N devices equals one step on
one device with the same batch (tests/test_data_parallel.py).

Every process runs the same computations in the same order (evaluation and
the TensorBoard glimpse figures included); only process 0 writes the run
folder (`is_chief`), and the others read it (a resumed run's checkpoints):
give every process the same `--output-dir` on storage they all see.

This module imports JAX only when Keras runs on JAX.
"""

import hashlib
import os

import keras
import numpy as np

from glimpse_keras import backends
from glimpse_keras.config import ConfigError
from glimpse_keras.errors import GlimpseError

DATA_PARALLEL = "data_parallel"
TF_STRATEGIES = ("mirrored", "multi_worker")

# (flag, environment variable read by `keras.distribution.initialize`)
ADDRESS = ("--coordinator-address", "KERAS_DISTRIBUTION_JOB_ADDRESSES")
NUM_PROCESSES = ("--num-processes", "KERAS_DISTRIBUTION_NUM_PROCESSES")
PROCESS_ID = ("--process-id", "KERAS_DISTRIBUTION_PROCESS_ID")


class ClusterError(GlimpseError, RuntimeError):
    """This process could not join the multi-process job; the message says why."""


# === Which strategy on which backend ===


def check_strategy(name, backend):
    """Refuses a strategy of the other backend, naming the one to use.

    Raises:
        ConfigError: a `tf.distribute` strategy on JAX, or data_parallel on
            TensorFlow (or on a backend that does not train).
    """
    if name in TF_STRATEGIES and backend != "tensorflow":
        raise ConfigError(
            f"train.strategy: {name} is a tf.distribute strategy and needs the TensorFlow backend, "
            f"but Keras runs on {backend!r}; on JAX use train.strategy={DATA_PARALLEL} (--strategy "
            f"{DATA_PARALLEL}: every local device, several hosts with --num-processes)"
        )
    if name == DATA_PARALLEL and backend != "jax":
        raise ConfigError(
            f"train.strategy: {DATA_PARALLEL} is keras.distribution's data parallelism on JAX, but "
            f"Keras runs on {backend!r}; train on JAX (--backend jax), or on TensorFlow use "
            f"train.strategy=mirrored (the GPUs of one host) or multi_worker (several hosts, TF_CONFIG)"
        )


# === Joining a multi-process job ===


def cluster_settings(address=None, num_processes=None, process_id=None, environ=None):
    """The multi-process settings of this process, from flags or the environment.

    A flag's value wins over its environment variable (see `ADDRESS`,
    `NUM_PROCESSES`, `PROCESS_ID`).

    Args:
        address: "HOST:PORT" of process 0 (the coordinator), or a comma
            list of every process's address (the first is the coordinator).
        num_processes: processes in the job.
        process_id: this process's id, 0 to num_processes - 1.
        environ: the environment (default `os.environ`).

    Returns:
        (address, num_processes, process_id), or None for a single-process
        job (nothing set, or one process).

    Raises:
        ConfigError: a setting missing, not an integer or out of range,
            naming the flag and the environment variable.
    """
    environ = os.environ if environ is None else environ
    values = {}
    for (flag, variable), value in ((ADDRESS, address), (NUM_PROCESSES, num_processes), (PROCESS_ID, process_id)):
        if value is None and environ.get(variable, "").strip():
            value = environ[variable].strip()
            if flag != ADDRESS[0]:
                try:
                    value = int(value)
                except ValueError:
                    raise ConfigError(f"{variable}: expected an integer, got {value!r}") from None
        values[flag] = value
    address, num_processes, process_id = values.values()
    if address is None and num_processes is None and process_id is None:
        return None
    if num_processes is not None and num_processes < 1:
        raise ConfigError(f"{NUM_PROCESSES[0]}: expected a number of processes >= 1, got {num_processes}")
    if num_processes == 1 and address is None and process_id in (None, 0):
        return None
    missing = [f"{flag} (or {variable})" for flag, variable in (ADDRESS, NUM_PROCESSES, PROCESS_ID)
               if values[flag] is None]
    if missing:
        raise ConfigError(
            f"a multi-process job needs the coordinator's address, the number of processes and this "
            f"process's id; missing: {', '.join(missing)}"
        )
    if not 0 <= process_id < num_processes:
        raise ConfigError(
            f"{PROCESS_ID[0]}: {process_id} is not a process of a job of {num_processes} processes "
            f"(ids 0 to {num_processes - 1})"
        )
    return address, num_processes, process_id


def join_cluster(address=None, num_processes=None, process_id=None):
    """Makes this process one of a multi-process JAX job, when one is set.

    Call it before JAX computes anything (`train.py` does so first). It does
    nothing when the settings describe a single process, or when this
    process has already joined.

    Args:
        address, num_processes, process_id: see `cluster_settings`.

    Returns:
        (address, num_processes, process_id) when a job is joined, else None.

    Raises:
        ConfigError: incomplete or invalid settings (`cluster_settings`).
        ClusterError: JAX refused to join (this process already started
            its backend: a computation, `jax.devices()`, ...), or the
            coordinator could not be reached in time.
    """
    settings = cluster_settings(address, num_processes, process_id)
    import jax

    if settings is None or jax.distributed.is_initialized():
        return None
    address, num_processes, process_id = settings
    try:
        keras.distribution.initialize(address, num_processes, process_id)
    except Exception as error:  # JAX raises RuntimeError or XlaRuntimeError
        raise ClusterError(
            f"process {process_id} of {num_processes} could not join the job coordinated by {address}: "
            f"{error}"
        ) from error
    return settings


# === The distribution ===


def data_parallel():
    """The job's `DataParallel` over every device of every process, made
    Keras' global distribution (Keras' JAX trainer reads it when variables
    are created and in every `fit`/`evaluate`); the one already set when
    there is one.

    Joins a multi-process job first when the environment variables describe
    one (`join_cluster`).
    """
    current = keras.distribution.distribution()
    if isinstance(current, keras.distribution.DataParallel):
        return current
    join_cluster()
    distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    keras.distribution.set_distribution(distribution)
    return distribution


def device_count(strategy):
    """Devices that share each batch under `strategy` (a `tf.distribute`
    strategy, a Keras `Distribution` or None): 1 without one."""
    mesh = getattr(strategy, "device_mesh", None)  # a Keras Distribution
    if mesh is not None:
        return int(mesh.devices.size)
    return int(getattr(strategy, "num_replicas_in_sync", 1) or 1)


def check_batch_sizes(stages, devices):
    """Every stage's global batch must split evenly over the devices.

    Raises:
        ConfigError: naming the stage's key, its batch size and the device
            count.
    """
    if devices <= 1:
        return
    for index, stage in enumerate(stages):
        if stage.batch_size % devices:
            raise ConfigError(
                f"train.stages.{index}.batch_size: the global batch of {stage.batch_size} clips does not "
                f"split over the {devices} devices of train.strategy={DATA_PARALLEL}; use a multiple of "
                f"{devices} (each device then takes batch_size / {devices} clips)"
            )


def describe(name, strategy):
    """What RUN/environment.json records about the distribution of a session:
    the strategy's name, its class, the devices sharing each batch and, on
    JAX, the processes, this process's id, the platform and device kind."""
    record = {"strategy": name, "class": type(strategy).__name__ if strategy is not None else None,
              "devices": device_count(strategy)}
    if backends.current_backend() == "jax":
        import jax

        device = jax.devices()[0]
        record.update(processes=jax.process_count(), process_id=jax.process_index(),
                      local_devices=jax.local_device_count(), platform=device.platform,
                      device_kind=device.device_kind)
    return record


# === Who writes, and keeping the processes together ===


def process_count():
    """Processes in this job (1 unless a multi-process JAX job was joined)."""
    if backends.current_backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def is_chief():
    """True in the process that writes the run folder (process 0)."""
    if backends.current_backend() != "jax":
        return True
    import jax

    return jax.process_index() == 0


def barrier(name):
    """Waits until every process of the job reaches `barrier(name)` (no-op
    with one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def chief_first(function, name):
    """Runs `function()` in process 0, then, once it returned, in the others
    (e.g. data preparation: the others then find what process 0 wrote, on
    a shared file system, instead of writing the same files at once).

    Returns:
        `function()`'s result in this process.
    """
    if is_chief():
        result = function()
        barrier(name)
        return result
    barrier(name)
    return function()


def check_same_job(description, what):
    """Fails in every process unless all of them pass the same `description`
    (a string: e.g. the resolved config), so that processes launched with
    different settings stop instead of training different models.

    Raises:
        ClusterError: naming `what`.
    """
    if process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(description.encode()).digest()[:8], np.uint32)
    try:
        multihost_utils.assert_equal(digest, what)
    except AssertionError:
        raise ClusterError(
            f"the processes of this job differ in {what}; launch every process with the same "
            f"command, changing only {PROCESS_ID[0]}"
        ) from None


def broadcast_from_chief(variables):
    """Gives every process process 0's values of `variables` (no-op with one
    process), so that replicas start from the same bits even where the
    processes computed their initial values themselves (data-dependent
    initialisation on different hardware)."""
    if process_count() == 1:
        return
    from jax.experimental import multihost_utils

    values = multihost_utils.broadcast_one_to_all([np.asarray(variable.value) for variable in variables])
    for variable, value in zip(variables, values):
        variable.assign(value)
