"""tfspk-data-service: serve tfspk-train's shard input from other processes or hosts (tf.data service)."""
import signal
import socket
import time

from tfspk import cli
from tfspk.errors import ToolError

USAGE = """tfspk-data-service [options]
 e.g.: tfspk-data-service --port=5050 --workers=2                 # dispatcher + 2 workers on this host
       tfspk-data-service --dispatcher=host1:5050 --workers=4     # 4 more workers on another host
       tfspk-train --set data.source=shards --set data.service=grpc://host1:5050 ..."""
DESCRIPTION = """Without --dispatcher: starts a tf.data service dispatcher on --port and --workers workers
registered to it. With --dispatcher: starts --workers workers that join that dispatcher. Runs until
SIGINT/SIGTERM. The workers run the whole shard pipeline (read, shuffle, crop, decode) and send the
batches to the trainer; they read the shard files at the paths of the trainer's data.shards, so every
host needs them at the same path (a shared file system)."""


def _main(argv):
    parser = cli.KaldiArgumentParser(USAGE, description=DESCRIPTION)
    parser.add_argument("--port", type=int, default=5050, help="dispatcher port (without --dispatcher)")
    parser.add_argument("--dispatcher", default="", help="host:port of a running dispatcher to join")
    parser.add_argument("--workers", type=int, default=1, help="worker servers started by this process")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for --dispatcher to answer before failing (default: 30)")
    args = parser.parse_args(argv)
    if args.workers < 0 or (args.dispatcher and args.workers < 1):
        raise ToolError(f"--workers must be >= 1 with --dispatcher and >= 0 without, got {args.workers}")
    if not 0 < args.port < 65536:
        raise ToolError(f"--port must be in 1..65535, got {args.port}")
    dispatcher_address = None
    if args.dispatcher:   # checked before TensorFlow is imported: a typo should not cost its start-up
        from tfspk.data.shards import service_host_port
        dispatcher_address = service_host_port(args.dispatcher)
        if dispatcher_address is None:
            raise ToolError(f"--dispatcher: expected host:port, got '{args.dispatcher}'")
    if args.timeout <= 0:
        raise ToolError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.dispatcher:   # TensorFlow's worker would wait for a dead dispatcher for good
        from tfspk.data.shards import wait_for_service
        wait_for_service(args.dispatcher, args.timeout, log=cli.log)
    import tensorflow as tf
    service = tf.data.experimental.service
    servers = []
    if dispatcher_address is None:
        try:
            servers.append(service.DispatchServer(service.DispatcherConfig(port=args.port)))
        except Exception as err:   # e.g. the port is taken: TF raises its own error types
            raise ToolError(f"cannot start a dispatcher on port {args.port}: {err}") from None
        dispatcher_address = f"localhost:{args.port}"
        cli.log(f"dispatcher at grpc://{socket.gethostname()}:{args.port} (trainers: --set data.service=grpc://{socket.gethostname()}:{args.port})")
    for _ in range(args.workers):
        servers.append(service.WorkerServer(service.WorkerConfig(dispatcher_address=dispatcher_address)))
    cli.log(f"{args.workers} worker(s) registered with {dispatcher_address}; serving until SIGINT/SIGTERM")
    stop = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: stop.append(number))
    while not stop:
        time.sleep(0.2)
    cli.log(f"received signal {stop[0]}; stopping")
    return 0


def main():
    cli.run_tool(_main)
