"""Size of the converter's Beam pipeline description as the dataset grows.

    python benchmarks/beam_pipeline_size.py [--dataflow-dry-run]

Plans NTU samples with distinct ids and `gs://` paths (36, 1,000 and NTU-120's
114,480; two protocols, 64 videos per shard) and prints, for each count:

    - the serialised runner-API proto of the converter's pipeline (the samples
      are in the plan file, whose size is printed too);
    - the same proto for a `beam.Create` of one element per sample, the first
      step of the previous design (the samples inside the description).

Runners send the description to their service (Dataflow caps the size of a
job request). With --dataflow-dry-run (needs `pip install "apache-beam[gcp]"
build`; run from the repository root) the pipeline is also built for the
DataflowRunner with `--dry_run True`: Beam builds the package the workers would
install from pyproject.toml and translates the job; nothing is staged or
submitted, and no network is used.
"""

import argparse
import itertools
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import apache_beam as beam  # noqa: E402

from glimpse_keras.data import convert_beam, ntu, sharding  # noqa: E402
from glimpse_keras.data.sources import RawSample  # noqa: E402

ROOT = "gs://BUCKET/nturgbd"
OUTPUT = "gs://BUCKET/ntu_tfrecords"
PROTOCOLS = ("xsub120", "xset120")
COUNTS = (36, 1_000, 114_480)


def ntu_samples(count):
    """`count` RawSamples with distinct valid NTU ids, spread over the id space."""
    names = (f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}" for s, c, p, r, a in itertools.product(
        range(1, 33), range(1, 4), range(1, 107), range(1, 3), range(1, 121)))
    samples = []
    for name in itertools.islice(names, 0, 7 * count, 7):
        sample_id = ntu.parse_ntu_sample_id(name)
        samples.append(RawSample(
            "ntu", name, sample_id.label, sample_id.subject, sample_id.camera, sample_id.setup,
            sample_id.replication, tuple((p, ntu.ntu_split(sample_id, p)) for p in PROTOCOLS),
            f"{ROOT}/nturgb+d_rgb/{name}_rgb.avi", f"{ROOT}/nturgb+d_skeletons/{name}.skeleton"))
    return samples


def description_size(pipeline):
    return len(pipeline.to_runner_api().SerializeToString())


def converter_pipeline(options=None):
    pipeline = beam.Pipeline(options=options)
    plan_path = f"{OUTPUT}/beam_plan.{'0' * 32}.pickle.partial"
    convert_beam.build_pipeline(pipeline, OUTPUT, ROOT, plan_path, stored_size=256, jpeg_quality=90)
    return pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataflow-dry-run", action="store_true")
    args = parser.parse_args()
    print("| samples | shards | plan file, bytes | converter's pipeline, bytes | Create of every sample, bytes |")
    print("| --- | --- | --- | --- | --- |")
    for count in COUNTS:
        plans = sharding.plan_shards(ntu_samples(count), 64)
        plan_file = len(pickle.dumps(plans, protocol=pickle.HIGHEST_PROTOCOL))
        create = beam.Pipeline()
        _ = create | beam.Create([(p.path, i, s) for p in plans for i, s in enumerate(p.samples)])
        print(f"| {count:,} | {len(plans):,} | {plan_file:,} | {description_size(converter_pipeline()):,} | "
              f"{description_size(create):,} |", flush=True)
    if args.dataflow_dry_run:
        options = convert_beam.pipeline_options([
            "--runner", "DataflowRunner", "--project", "my-project", "--region", "europe-west1",
            "--temp_location", "gs://my-bucket/tmp", "--setup_file", "./pyproject.toml", "--dry_run", "True"])
        result = converter_pipeline(options).run()
        print(f"DataflowRunner --dry_run: state {result.state}, job pipeline description "
              f"{len(result.job.proto_pipeline.SerializeToString()):,} bytes")


if __name__ == "__main__":
    main()
