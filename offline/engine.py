"""Run the Pulumi program with no engine: a mock monitor (`PreviewMonitor`, built on the
SDK's) recording every request.

Preview semantics: a resource being created has no ID yet and its outputs are only
its inputs, so anything a provider would compute stays unknown, as in `pulumi preview`.
"""

import asyncio
import gc
import logging
import runpy
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks, rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import get_root_resource, set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from model import PROJECT
from offline.registry import Registration
from offline.stackfile import StackFile


class PreviewMocks(mocks.Mocks):
    """Preview answers for the SDK's mock monitor: no ID, outputs = inputs, empty invoke results.

    `run_program` answers RegisterResource in `PreviewMonitor` without calling
    `new_resource`; it serves `ReadResource` and the tests that use the SDK's monitor.
    """

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict]:
        return "", dict(args.inputs)

    def call(self, args: mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, keeping each RegisterResource request as the engine gets it."""

    def __init__(self, mocks: mocks.Mocks | None = None,
                 on_register: Callable[[Registration], None] | None = None) -> None:
        super().__init__(mocks or PreviewMocks())
        self.registrations: list[Registration] = []
        self.on_register = on_register  # progress hook (offline/plan.py), called once per request

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        self.record(request)
        return super().RegisterResource(request)

    def record(self, request) -> Registration:
        """Keep `request` (a RegisterResourceRequest) as a `Registration`; return it."""
        inputs = struct_pb2.Struct()
        inputs.CopyFrom(request.object)
        registration = Registration(
            urn=self.make_urn(request.parent, request.type, request.name),
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=request.custom,
            protect=bool(request.protect),
            provider=request.provider,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            inputs=inputs,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=list(request.ignoreChanges),
        )
        self.registrations.append(registration)
        if self.on_register:
            self.on_register(registration)
        return registration


class PreviewMonitor(RecordingMonitor):
    """The recording monitor, answering as `pulumi preview` does for a resource being
    created: no ID, and its outputs are its inputs.

    The request's `object` Struct goes back as the response's, as it came. The SDK's mock
    monitor would turn it into Python values, hand them to `PreviewMocks.new_resource`,
    serialize them again and keep a copy of every resource's state until the end: the same
    responses (tests/test_engine.py compares the two), for less CPU and memory. The state
    is made only for the resources a program reads back (a resource reference in an input
    is read back through the `getResource` invoke; an unknown URN raises the SDK's
    "unknown resource" Exception). So `ExistsResource` and `get_registered_resources()`
    see only those: the program uses neither.
    """

    def __init__(self, on_register: Callable[[Registration], None] | None = None) -> None:
        super().__init__(PreviewMocks(), on_register)
        self.by_urn: dict[str, Registration] = {}

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        registration = self.record(request)
        urn = registration.urn
        if request.type == "pulumi:pulumi:Stack":  # as the SDK's mock monitor answers it
            return resource_pb2.RegisterResourceResponse(urn=urn)
        self.by_urn[urn] = registration
        return resource_pb2.RegisterResourceResponse(urn=urn, id="", object=request.object)

    def Invoke(self, request):  # noqa: N802 - gRPC method name
        if request.tok == "pulumi:pulumi:getResource":
            _ensure_event_loop()  # deserializing resource references needs one on this thread
            urn = request.args.fields["urn"].string_value
            if urn in self.by_urn and urn not in self.resources:
                state = rpc.deserialize_properties(self.by_urn[urn].inputs)
                self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, "", state)
        return super().Invoke(request)


def _warning_logger() -> logging.Logger:
    logger = logging.getLogger("seoul-cluster.offline")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("  %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return logger


def run_program(
    program: Path,
    stack: StackFile,
    on_register: Callable[[Registration], None] | None = None,
    *,
    pause_gc: bool = True,
) -> tuple[list[Registration], struct_pb2.Struct]:
    """Run `program` against `stack`'s config under a `PreviewMonitor`; return the
    registrations and the stack outputs.

    `on_register`, if given, is called with each registration as it is recorded (progress).
    `pause_gc=False` leaves the cyclic collector as Python sets it (the bench's second floor).
    """
    # The SDK's garbage is freed by reference counting; the cyclic collector's full
    # collections only rescan what stays alive (the SDKs, and every resource until the process
    # ends): a third of the CPU time for seoul-prod, over half with 3,000 more resources, and
    # why the cost per resource grew with the stack. So it is paused for the run (the cycles
    # left uncollected cost about 4% more peak memory) and what the run built is frozen
    # afterwards, so that later collections (policy run, writing) skip it.
    gc_was_enabled = gc.isenabled()
    if pause_gc:
        gc.freeze()
        gc.disable()
    monitor = PreviewMonitor(on_register=on_register)
    set_root_resource(None)  # a fresh Stack per run, even when one process plans twice
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack.stack, preview=True,
                    logger=_warning_logger(), monitor=monitor)
    pulumi.runtime.set_all_config(dict(stack.config), list(stack.secret_keys))

    outputs = struct_pb2.Struct()

    async def main() -> None:
        runpy.run_path(str(program), run_name="__main__")
        root = get_root_resource()
        outputs.CopyFrom(await rpc.serialize_properties(dict(root.outputs), {}))

    try:
        with _interruptible(_ensure_event_loop()) as interrupted:
            _sync_await(_until_interrupted(run_pulumi_func(main), interrupted))
    finally:
        if pause_gc:
            gc.freeze()
        if gc_was_enabled:
            gc.enable()
    return monitor.registrations, outputs


@contextmanager
def _interruptible(loop: asyncio.AbstractEventLoop) -> Iterator[asyncio.Future]:
    """A future that Ctrl-C (SIGINT) completes, besides raising KeyboardInterrupt as usual.

    KeyboardInterrupt alone cannot be relied on inside the SDK: `run_pulumi_func` catches
    BaseException and waits for every outstanding RPC before re-raising it, and a resource
    interrupted halfway through its constructor leaves RPCs that never finish (the run hung
    until a second Ctrl-C); a few SDK helpers swallow BaseException outright. The handler is
    only installed over Python's default one, in the main thread: a SIGINT that the caller
    ignores (a shell's background job) stays ignored.
    """
    interrupted = loop.create_future()
    installed = (threading.current_thread() is threading.main_thread()
                 and signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    def on_sigint(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(lambda: interrupted.done() or interrupted.set_result(None))
        raise KeyboardInterrupt

    if installed:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        interrupted.cancel()


async def _until_interrupted(run: Awaitable[None], interrupted: asyncio.Future) -> None:
    """Await `run`; raise KeyboardInterrupt as soon as `interrupted` completes, leaving `run`
    cancelled (the process is about to exit, or to plan afresh with a new root resource)."""
    task = asyncio.ensure_future(run)
    await asyncio.wait({task, interrupted}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        raise KeyboardInterrupt
    task.result()
