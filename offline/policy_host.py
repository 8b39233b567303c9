"""Hosting the policy pack's analyzer: in this process without a socket, or as the CLI does.

Both hosts yield the generated `analyzer_pb2_grpc.AnalyzerStub`, so the runner sends the
same request messages, as bytes, to the same servicer methods either way:

* `inprocess` (default): pulumi_policy's own servicer, built from `policies.pack` exactly as
  `PolicyPack()` builds it, registered with the generated `add_AnalyzerServicer_to_server`
  on an in-memory channel. Why not a loopback gRPC server: the protocol has no batched
  `Analyze` (the CLI calls it once per resource), and the 631 round trips through a real
  channel, each a hand-off to a server thread, cost a quarter of seoul-prod's policy run
  (0.75-0.95 s against 0.55-0.68 s here, measured side by side). The servicer never reads
  its gRPC context, so calling its handlers in this thread is exact; every request and
  response still goes through the generated serializers, so what the rules see is what a
  socket would deliver. Each resource's properties and options are converted once per call
  rather than once per policy (`marshalling_once`).
* `subprocess`: the CLI's entry point `policies/__main__.py`, run as the CLI runs it (a script,
  from the pack directory) in a child process that prints its port; the stub talks real gRPC
  over loopback. About 1 s of start-up: kept to prove the in-memory host changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import select
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

import grpc
from pulumi.runtime.proto import analyzer_pb2_grpc

POLICY_PACK_DIR = pathlib.Path(__file__).resolve().parent.parent / "policies"

Mode = Literal["inprocess", "subprocess"]

# PolicyPack() always reports this version to the engine (the CLI shows PulumiPolicy.yaml's);
# the in-process servicer uses the same so both modes produce identical messages.
SDK_REPORTED_VERSION = "0.0.1"
_GRPC_OPTIONS = [("grpc.max_receive_message_length", 1024 * 1024 * 400)]
_STARTUP_TIMEOUT_S = 60.0


@contextlib.contextmanager
def analyzer(mode: Mode = "inprocess") -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """An `AnalyzerStub` for the seoul-cluster pack, hosted as `mode` says; stopped on exit.

    Raises ValueError for an unknown mode and RuntimeError when the child process does not
    start serving within 60 s.
    """
    if mode == "inprocess":
        yield analyzer_pb2_grpc.AnalyzerStub(InMemoryChannel(marshalling_once(_pack_servicer())))
    elif mode == "subprocess":
        with _subprocess_server() as port, grpc.insecure_channel(f"127.0.0.1:{port}", options=_GRPC_OPTIONS) as ch:
            grpc.channel_ready_future(ch).result(timeout=_STARTUP_TIMEOUT_S)
            yield analyzer_pb2_grpc.AnalyzerStub(ch)
    else:
        raise ValueError(f"unknown mode {mode!r}")


def _pack_servicer() -> Any:
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from policies import pack

    return _PolicyAnalyzerServicer(
        pack.PACK_NAME,
        SDK_REPORTED_VERSION,
        pack.POLICIES,
        pack.DEFAULT_ENFORCEMENT_LEVEL,
        None,
        pack.PACK_DESCRIPTION,
    )


def marshalling_once(servicer: Any) -> Any:
    """`servicer` (pulumi_policy's), its `Analyze` and `AnalyzeStack` turning each resource's
    properties into policy input once per call instead of once per policy; returns `servicer`.

    pulumi_policy's servicer runs `unknown_checking_proxy(deserialize_properties(
    json_format.MessageToDict(properties)))` inside its loop over policies: for seoul-prod
    that is 14 conversions of every resource in `Analyze` and 20 of all of them in
    `AnalyzeStack`, most of the policy run. During those two calls the three names, as that
    module calls them, go through `_PropertyMemo`: the first conversion of a properties
    message is kept and every later policy gets the same view, equal to the one it would have
    been handed; the servicer's `_get_resource_options` and `_get_provider_resource` likewise
    answer once per resource. The memos are dropped when the call returns, so they never hold
    more than one call's resources, one view of each (the servicer alone keeps all of them for
    each stack policy anyway). seoul-prod's policy run: 1.1 s of CPU without, 0.34 s with.
    The pack never writes to its inputs (tests/test_policy_runner.py compares the results
    with the unmemoized servicer's and the CLI-hosted analyzer's).
    """
    for method in ("Analyze", "AnalyzeStack"):
        setattr(servicer, method, _memoized(servicer, getattr(servicer, method)))
    return servicer


def _memoized(servicer: Any, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    import pulumi_policy.policy as sdk

    def call(request: Any, context: Any) -> Any:  # one call at a time, as the in-memory channel serves them
        saved = sdk.json_format, sdk.deserialize_properties, sdk.unknown_checking_proxy
        memo = _PropertyMemo(*saved)
        sdk.json_format, sdk.deserialize_properties, sdk.unknown_checking_proxy = (
            memo, memo.deserialize_properties, memo.unknown_checking_proxy)
        # The servicer's own per-resource helpers (options, provider) answer once per resource too.
        for name in _PER_RESOURCE_HELPERS:
            setattr(servicer, name, _once_per_message(getattr(servicer, name)))
        try:
            return handler(request, context)
        finally:
            sdk.json_format, sdk.deserialize_properties, sdk.unknown_checking_proxy = saved
            for name in _PER_RESOURCE_HELPERS:
                delattr(servicer, name)  # the class's method again

    return call


_PER_RESOURCE_HELPERS = ("_get_resource_options", "_get_provider_resource")


def _once_per_message(helper: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`helper(message)` computed once per message object (kept alive, so its id is not reused)."""
    seen: dict[int, tuple[Any, Any]] = {}

    def once(message: Any) -> Any:
        hit = seen.get(id(message))
        if hit is None or hit[0] is not message:
            hit = seen[id(message)] = (message, helper(message))
        return hit[1]

    return once


class _Properties:
    """What the memo's `MessageToDict` hands out for a properties message: the message, and its
    policy view once made. Only the memo's other two functions take it."""

    __slots__ = ("message", "view")

    def __init__(self, message: Any) -> None:
        self.message, self.view = message, None


class _PropertyMemo:
    """Stands in for pulumi_policy.policy's `json_format` module and two of its functions.

    `MessageToDict(message)` returns one `_Properties` per message object (protobuf hands out
    the same Python object for a sub-message while one is alive, and the memo keeps it
    alive); `deserialize_properties` passes it on; `unknown_checking_proxy` converts it with
    the three real functions the first time and returns that view from then on. Any other
    argument goes straight to the real function.
    """

    def __init__(self, json_format: Any, deserialize: Callable[..., Any], proxy: Callable[[Any], Any]) -> None:
        self._json_format, self._deserialize, self._proxy = json_format, deserialize, proxy
        self._seen: dict[int, _Properties] = {}  # id(message) -> its _Properties (which keeps it alive)

    def __getattr__(self, name: str) -> Any:  # the rest of json_format
        return getattr(self._json_format, name)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - json_format's name
        if args or kwargs:
            return self._json_format.MessageToDict(message, *args, **kwargs)
        found = self._seen.get(id(message))
        if found is None or found.message is not message:
            found = self._seen[id(message)] = _Properties(message)
        return found

    def deserialize_properties(self, props: Any, proxy_secrets: bool = False) -> Any:
        if not isinstance(props, _Properties):
            return self._deserialize(props, proxy_secrets)
        if proxy_secrets:  # Remediate's form, never memoized
            return self._deserialize(self._json_format.MessageToDict(props.message), proxy_secrets)
        return props

    def unknown_checking_proxy(self, props: Any) -> Any:
        if not isinstance(props, _Properties):
            return self._proxy(props)
        if props.view is None:
            props.view = self._proxy(self._deserialize(self._json_format.MessageToDict(props.message)))
        return props.view


class _CallDetails(NamedTuple):
    method: str
    invocation_metadata: Sequence[tuple[str, str]] = ()


class InMemoryChannel:
    """The part of `grpc.Channel` a generated stub uses (unary-unary calls), served in this thread.

    `servicer` is registered with the generated `add_AnalyzerServicer_to_server`, so method
    paths, request deserializers and response serializers are the generated ones. A call
    serializes the request, hands the parsed copy to the servicer's handler (context None:
    pulumi_policy's servicer never reads it), and parses the serialized response. Errors
    raised by the servicer propagate as they are.
    """

    def __init__(self, servicer: analyzer_pb2_grpc.AnalyzerServicer) -> None:
        self._handlers: list[grpc.GenericRpcHandler] = []
        analyzer_pb2_grpc.add_AnalyzerServicer_to_server(servicer, self)

    # the two registration hooks generated code may call on a server
    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._handlers.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._handlers.append(grpc.method_handlers_generic_handler(service, handlers))

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes],
        response_deserializer: Callable[[bytes], Any],
        _registered_method: bool = False,
    ) -> Callable[..., Any]:
        handler = next(h for h in (g.service(_CallDetails(method)) for g in self._handlers) if h is not None)

        def call(request: Any, timeout: float | None = None, metadata: Any = None) -> Any:
            received = handler.request_deserializer(request_serializer(request))
            return response_deserializer(handler.response_serializer(handler.unary_unary(received, None)))

        return call

    def unary_stream(self, *_args: Any, **_kwargs: Any) -> None:  # the Analyzer service has none
        return None

    stream_unary = stream_stream = unary_stream


@contextlib.contextmanager
def _subprocess_server() -> Iterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    proc = subprocess.Popen(
        [sys.executable, "-u", str(POLICY_PACK_DIR / "__main__.py")],
        cwd=POLICY_PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _STARTUP_TIMEOUT_S)
        line = proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            raise RuntimeError(f"policy pack did not print its port (got {line!r}, exit {proc.poll()})")
        yield int(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
