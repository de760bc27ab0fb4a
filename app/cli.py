"""The `latentmap` command: serve the dashboard, list datasets and runs, train, project and cluster.

train / project / cluster run in this process (with a progress bar on a terminal) and record the
run and its job in the same registry as the server, so the dashboard shows them. Bad arguments
exit with status 2 and one line on stderr saying what to fix.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from app import cli_interchange
from app.settings import Settings
from ml.methods.specs import METHOD_SPECS

TRAIN_METHODS = ", ".join(METHOD_SPECS)  # ae, dae, sparse-ae, cae, simclr, moco, byol
PROJECTION_METHODS = "pca, tsne, umap"
CLUSTERING_METHODS = "kmeans, dbscan, hdbscan, agglomerative, gmm, scan"


class UsageError(Exception):
    """A bad argument: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _whole(minimum: int):  # noqa: ANN202 - an argparse type factory
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return convert


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None,
                        help="where the registry and runs live (default $LATENTMAP_DATA_DIR or ~/.latentmap)")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a method parameter (repeatable)")

    parser = OneLineParser(prog="latentmap", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    serve = commands.add_parser("serve", parents=[common], help="serve the dashboard and the API")
    serve.add_argument("--host", default=None, help="default 127.0.0.1")
    serve.add_argument("--port", type=_whole(1), default=None, help="default 8000")
    serve.add_argument("--workers", type=_whole(1), default=None, help="job worker processes (default 1)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback --host without LATENTMAP_TOKEN (anyone who can reach it can train and delete)")

    commands.add_parser("datasets", parents=[common, json_flag], help="list datasets")
    commands.add_parser("runs", parents=[common, json_flag], help="list runs")
    doctor = commands.add_parser("doctor", parents=[common, json_flag],
                                 help="check the registry against the files (exit 0 clean, 1 problems found)")
    doctor.add_argument("--repair", action="store_true",
                        help="mend what it finds: missing files → failed, dead jobs → interrupted, orphan runs → registered")

    train = commands.add_parser("train", parents=[common, json_flag, params], help="train an encoder")
    train.add_argument("--dataset", required=True, help="digits, fashion-mnist, mnist, cifar10, an uploaded name or folder:PATH")
    train.add_argument("--method", required=True, help=TRAIN_METHODS)
    train.add_argument("--epochs", type=_whole(1), default=None)
    train.add_argument("--embedding-dim", type=_whole(1), default=None)
    train.add_argument("--batch-size", type=_whole(1), default=None)
    train.add_argument("--lr", type=_positive_float, default=None)
    train.add_argument("--seed", type=_whole(0), default=None)
    train.add_argument("--encoder", default=None, help="auto (default), mlp, conv or resnet18")
    train.add_argument("--snapshots", type=_whole(0), default=None,
                       help="embeddings kept at evenly spaced epochs for the timeline (default 8, 0 = none, at most 32)")

    project = commands.add_parser("project", parents=[common, json_flag, params], help="project a run's embedding")
    project.add_argument("run_id", metavar="RUN_ID")
    project.add_argument("--method", required=True, help=PROJECTION_METHODS)

    cluster = commands.add_parser("cluster", parents=[common, json_flag, params], help="cluster a run's embedding")
    cluster.add_argument("run_id", metavar="RUN_ID")
    cluster.add_argument("--method", required=True, help=CLUSTERING_METHODS)
    cluster.add_argument("--on", default="embedding", metavar="embedding|PROJECTION_ID")
    cli_interchange.add_parsers(commands, common, json_flag)  # import, export
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(data_dir=args.data_dir) if args.data_dir is not None else Settings()


def _registry(settings: Settings):  # noqa: ANN202
    from app.registry import Registry

    return Registry(settings.registry_path).open()


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload, default=str) if args.json else text)


class _ProgressBar:
    """tqdm on stderr, only when stderr is a terminal; fed with the progress metrics of a job."""

    def __init__(self, description: str) -> None:
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=100, desc=description, unit="%", file=sys.stderr,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")

    def __call__(self, metrics: dict[str, float]) -> None:
        if self.bar is None:
            return
        self.bar.n = round(100 * float(metrics.get("fraction", 0.0)), 1)
        postfix = {}
        if "epoch" in metrics and "epochs" in metrics:
            postfix["epoch"] = f"{int(metrics['epoch'])}/{int(metrics['epochs'])}"
        if "loss" in metrics:
            postfix["loss"] = f"{float(metrics['loss']):.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_in_process(registry, settings: Settings, job, description: str, dataset=None):  # noqa: ANN001, ANN202
    """Run a job row (already `running` with our pid) here; Ctrl-C leaves it interrupted (resumable)."""
    from app.tasks import JobContext, run_job

    bar = _ProgressBar(description)
    context = JobContext(registry=registry, job=job, data_dir=settings.data_dir, datasets_dir=settings.datasets_dir,
                         listener=bar, dataset=dataset)
    try:
        final = run_job(context)
    except KeyboardInterrupt:
        registry.finish_job(job.id, "interrupted", "stopped with Ctrl-C")
        bar.close()
        raise
    bar.close()
    if final.status != "succeeded":
        raise SystemExit(f"latentmap: {job.kind} job {job.id} {final.status}: {final.error}")
    return context


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or "" = every interface) may resolve to an outside address


# ----- commands -------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.jobs import ray_problem
    from app.main import create_app

    overrides: dict[str, Any] = {key: value for key, value in
                                 (("host", args.host), ("port", args.port), ("workers", args.workers)) if value is not None}
    base = _settings(args)
    settings = base.model_copy(update=overrides)
    if not is_loopback(settings.host) and not settings.token and not args.insecure:
        raise UsageError(f"refusing to listen on {settings.host!r} without a token: set LATENTMAP_TOKEN"
                         f" (or pass --insecure to expose an unprotected server)")
    if settings.allowed_hosts is None and is_loopback(settings.host):
        # A web page whose domain is re-pointed at 127.0.0.1 (DNS rebinding) sends its own name as Host.
        settings = settings.model_copy(update={"allowed_hosts": sorted({"127.0.0.1", "localhost", "::1", settings.host})})
    _registry(settings)  # a registry that cannot be opened or migrated stops here, in one line
    if settings.backend == "ray" and (problem := ray_problem(settings)):
        raise UsageError(problem)  # no server that takes jobs it cannot run (README: Running on a Ray cluster)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ml.datasets import list_datasets

    settings = _settings(args)
    rows = [{**info.to_dict(), "source": "builtin"} for info in list_datasets(settings.datasets_dir)]
    rows += [{"name": record.name, "description": record.description, "available": True, "location": record.path,
              "n_images": record.n, "image_shape": None, "has_labels": bool(record.report.get("classes")),
              "source": "uploaded"} for record in _registry(settings).list_datasets()]
    lines = [f"{'name':<16}{'available':<11}{'images':>8}  description"]
    lines += [f"{row['name']:<16}{'yes' if row['available'] else 'no':<11}{row['n_images'] or '-':>8}  {row['description']}"
              for row in rows]
    _emit(args, {"datasets": rows}, "\n".join(lines))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    runs = _registry(_settings(args)).list_runs()
    rows = [{"run_id": run.id, "dataset": run.dataset, "method": run.method, "status": run.status,
             "created": run.created, "metrics": run.metrics} for run in runs]
    lines = [f"{'run_id':<14}{'dataset':<16}{'method':<10}{'status':<12}knn_accuracy"]
    for row in rows:
        knn = (row["metrics"] or {}).get("knn_accuracy")
        lines.append(f"{row['run_id']:<14}{row['dataset']:<16}{row['method']:<10}{row['status']:<12}"
                     f"{'-' if knn is None else f'{knn:.3f}'}")
    _emit(args, {"runs": rows}, "\n".join(lines))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from app import doctor
    from app.processes import job_process_alive

    settings = _settings(args)
    registry = _registry(settings)
    findings = doctor.examine(registry, job_process_alive(registry))
    if args.repair:
        doctor.repair(findings)
    lines = [f"latentmap doctor: {settings.data_dir}: " + (f"{len(findings)} problem(s)" if findings else "no problems")]
    for finding in findings:
        done = "mended: " if finding.mended else "repair: "
        lines.append(f"  {finding.subject}: {finding.problem}\n    {done}{finding.remedy}")
    if not args.repair and any(finding.mend is not None for finding in findings):
        lines.append("Run again with --repair to mend them.")
    _emit(args, {"data_dir": str(settings.data_dir), "clean": not findings,
                 "problems": [finding.to_dict() for finding in findings]}, "\n".join(lines))
    return 1 if findings else 0


def cmd_train(args: argparse.Namespace) -> int:
    from app import catalog, tasks
    from app.dataset_source import open_dataset
    from ml.params import parse_key_values

    settings = _settings(args)
    registry = _registry(settings)
    if args.method not in catalog.training_methods():
        raise UsageError(f"unknown method {args.method!r}; choose one of {', '.join(catalog.training_methods())}")
    method_params = parse_key_values(args.param)
    spec = catalog.training_methods()[args.method]
    # Checked before the dataset is loaded; against the batch size too when it is given (the
    # dataset's default batch size is checked by train_config below).
    if args.batch_size is not None:
        spec.validate(method_params, args.batch_size)
    else:
        spec.params.validate(method_params)
    dataset = open_dataset(args.dataset, registry, settings.datasets_dir)
    given = {"epochs": args.epochs, "embedding_dim": args.embedding_dim, "batch_size": args.batch_size,
             "lr": args.lr, "seed": args.seed, "encoder": args.encoder, "snapshots": args.snapshots}
    config = catalog.train_config(args.dataset, args.method, dataset.image_shape, len(dataset), given, method_params)
    run_id, job = tasks.queue_training(registry, config, settings.data_dir, follow_ups=None,
                                       status="running", worker_pid=os.getpid())
    context = _run_in_process(registry, settings, job, f"train {args.method}", dataset)
    metrics = context.result["output"]
    keys = ("knn_accuracy", "linear_probe_accuracy", "final_loss", "train_seconds", "images_per_second")
    payload = {"run_id": run_id, "dataset": args.dataset, "method": args.method,
               "embedding_shape": [len(dataset), config["embedding_dim"]],
               "metrics": {**{key: metrics.get(key) for key in keys}, **metrics}, "config": config}
    knn = metrics.get("knn_accuracy")
    _emit(args, payload, f"run {run_id}: {args.method} on {args.dataset}, loss {metrics.get('final_loss')}, "
                         f"kNN accuracy {'-' if knn is None else f'{knn:.3f}'}")
    return 0


def _run_for(args: argparse.Namespace, registry):  # noqa: ANN001, ANN202
    run = registry.get_run(args.run_id)
    if run is None:
        raise UsageError(f"no run with id {args.run_id!r}; `latentmap runs` lists them")
    if run.status != "succeeded":
        raise UsageError(f"run {run.id} has no embedding (its training is {run.status})")
    return run


def cmd_project(args: argparse.Namespace) -> int:
    from app import catalog, tasks
    from ml.params import parse_key_values

    settings = _settings(args)
    registry = _registry(settings)
    run = _run_for(args, registry)
    params = catalog.validate_projection(args.method, parse_key_values(args.param))
    projection_id, job = tasks.queue_projection(registry, run.id, args.method, params, int(run.config.get("seed", 0)),
                                                status="running", worker_pid=os.getpid())
    meta = _run_in_process(registry, settings, job, f"project {args.method}").result["output"]
    payload = {"projection_id": projection_id, "run_id": run.id, "method": args.method, "seconds": meta.get("seconds"),
               "trustworthiness": meta.get("trustworthiness"), "params": meta.get("params")}
    _emit(args, payload, f"projection {projection_id} of run {run.id}: {args.method}, "
                         f"trustworthiness {meta.get('trustworthiness')}, {meta.get('seconds')} s")
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from app import catalog, tasks
    from ml.params import parse_key_values

    settings = _settings(args)
    registry = _registry(settings)
    run = _run_for(args, registry)
    params = catalog.validate_clustering(args.method, parse_key_values(args.param))
    if args.on != "embedding":
        projection = registry.get_projection(args.on)
        if projection is None or projection.run_id != run.id or projection.status != "succeeded":
            raise UsageError(f"--on {args.on!r} is neither 'embedding' nor a finished projection of run {run.id}")
    clustering_id, job = tasks.queue_clustering(registry, run.id, args.method, params, args.on,
                                                int(run.config.get("seed", 0)), status="running", worker_pid=os.getpid())
    meta = _run_in_process(registry, settings, job, f"cluster {args.method}").result["output"]
    keys = ("n_clusters", "noise_fraction", "silhouette", "ari", "nmi", "accuracy", "seconds")
    payload = {"clustering_id": clustering_id, "run_id": run.id, "method": args.method, "on": args.on,
               **{key: meta.get(key) for key in keys}}
    _emit(args, payload, f"clustering {clustering_id} of run {run.id}: {args.method}, {meta.get('n_clusters')} clusters,"
                         f" ARI {meta.get('ari')}")
    return 0


COMMANDS = {"serve": cmd_serve, "datasets": cmd_datasets, "runs": cmd_runs, "doctor": cmd_doctor, "train": cmd_train,
            "project": cmd_project, "cluster": cmd_cluster}
COMMANDS.update(cli_interchange.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    from ml.datasets import DatasetError
    from ml.params import ParamError
    from pydantic import ValidationError

    from app.migrations import RegistryError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ParamError, DatasetError, RegistryError) as exc:
        print(f"latentmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings from the environment (e.g. LATENTMAP_PORT=abc)
        first = exc.errors()[0]
        print(f"latentmap {args.command}: error: setting {'.'.join(map(str, first['loc']))}: {first['msg']}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentmap {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
