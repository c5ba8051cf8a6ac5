#!/usr/bin/env python3
"""A minimal Remote Workers API bot for sykli's BuildGrid interop tests.

BuildGrid hands actions to bots over `google.devtools.remoteworkers.v1test2.Bots`; no registry
here ships one, so the tests run this one, inside the venv `.ci/reapi-peers.sh install` made
(it imports the protos generated inside the `buildgrid` wheel).

One session, one lease at a time, SHA-256 (all BuildGrid speaks). For each lease: read the
Action (inline, or its digest) and its Command from the CAS, materialise the input root in a
fresh directory, run the arguments there with exactly the Command's environment, upload
outputs, stdout and stderr, and report the ActionResult on the lease. On SIGTERM or SIGINT it
kills a running action, reports its session as terminating (so BuildGrid stops handing it work)
and exits. It never lives longer than --max-seconds.

Protocol to the test harness: once the session exists it prints exactly
`rwapi-bot: session NAME` on stdout; then one line per action.
"""

import argparse
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as reapi
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as reapi_grpc
from buildgrid._protos.google.bytestream import bytestream_pb2 as bytestream
from buildgrid._protos.google.bytestream import bytestream_pb2_grpc as bytestream_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2 as bots
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2_grpc as bots_grpc

# Blobs above this go through ByteStream (BuildGrid's batch limit is about 4 MiB).
BATCH_LIMIT = 2 * 1024 * 1024
CHUNK = 1024 * 1024
RPC_TIMEOUT = 60
# The deadline of one Create/UpdateBotSession: BuildGrid long-polls for work for 80% of it, and
# not at all below 3 s (its NETWORK_TIMEOUT). A signal cancels the call at once.
POLL_SECONDS = 5.0
GRPC_INTERNAL = 13


def log(message):
    print(f"rwapi-bot: {message}", flush=True)


def sha256_digest(data):
    return reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


class Blobs:
    """The CAS of one instance, read and written by digest."""

    def __init__(self, channel, instance):
        self.cas = reapi_grpc.ContentAddressableStorageStub(channel)
        self.bytestream = bytestream_grpc.ByteStreamStub(channel)
        self.instance = instance
        self.prefix = f"{instance}/" if instance else ""

    def get(self, digest):
        if digest.size_bytes == 0:
            return b""
        if digest.size_bytes > BATCH_LIMIT:
            name = f"{self.prefix}blobs/{digest.hash}/{digest.size_bytes}"
            request = bytestream.ReadRequest(resource_name=name)
            return b"".join(r.data for r in self.bytestream.Read(request, timeout=RPC_TIMEOUT))
        request = reapi.BatchReadBlobsRequest(instance_name=self.instance, digests=[digest])
        (answer,) = self.cas.BatchReadBlobs(request, timeout=RPC_TIMEOUT).responses
        if answer.status.code != 0:
            raise RuntimeError(f"reading blob {digest.hash}/{digest.size_bytes}: {answer.status.message}")
        return answer.data

    def put(self, data):
        digest = sha256_digest(data)
        if digest.size_bytes == 0:
            return digest
        if digest.size_bytes > BATCH_LIMIT:
            name = f"{self.prefix}uploads/{uuid.uuid4()}/blobs/{digest.hash}/{digest.size_bytes}"

            def chunks():
                for offset in range(0, len(data), CHUNK):
                    yield bytestream.WriteRequest(
                        resource_name=name if offset == 0 else "",
                        write_offset=offset,
                        data=data[offset:offset + CHUNK],
                        finish_write=offset + CHUNK >= len(data),
                    )

            self.bytestream.Write(chunks(), timeout=RPC_TIMEOUT)
            return digest
        request = reapi.BatchUpdateBlobsRequest(instance_name=self.instance)
        request.requests.add(digest=digest, data=data)
        (answer,) = self.cas.BatchUpdateBlobs(request, timeout=RPC_TIMEOUT).responses
        if answer.status.code != 0:
            raise RuntimeError(f"writing blob {digest.hash}/{digest.size_bytes}: {answer.status.message}")
        return digest

    def put_file(self, path):
        with open(path, "rb") as f:
            return self.put(f.read())


def materialise(blobs, directory_digest, into):
    """Writes the Directory tree rooted at `directory_digest` under `into`."""
    os.makedirs(into, exist_ok=True)
    directory = reapi.Directory.FromString(blobs.get(directory_digest))
    for node in directory.files:
        path = os.path.join(into, node.name)
        with open(path, "wb") as f:
            f.write(blobs.get(node.digest))
        os.chmod(path, 0o755 if node.is_executable else 0o644)
    for node in directory.symlinks:
        os.symlink(node.target, os.path.join(into, node.name))
    for node in directory.directories:
        materialise(blobs, node.digest, os.path.join(into, node.name))


def upload_tree(blobs, path):
    """Uploads the files under `path`; returns its Directory and every Directory below it."""
    directory = reapi.Directory()
    below = []
    for name in sorted(os.listdir(path)):
        child = os.path.join(path, name)
        if os.path.islink(child):
            directory.symlinks.add(name=name, target=os.readlink(child))
        elif os.path.isdir(child):
            sub, sub_below = upload_tree(blobs, child)
            below.append(sub)
            below.extend(sub_below)
            directory.directories.add(name=name, digest=sha256_digest(sub.SerializeToString()))
        else:
            executable = bool(os.stat(child).st_mode & stat.S_IXUSR)
            directory.files.add(name=name, digest=blobs.put_file(child), is_executable=executable)
    return directory, below


class Bot:
    def __init__(self, args):
        self.args = args
        channel = grpc.insecure_channel(args.remote)
        self.bots = bots_grpc.BotsStub(channel)
        self.blobs = Blobs(channel, args.instance)
        self.stopping = False
        self.child = None
        self.bot_id = f"sykli-test-bot-{os.getpid()}"

    def on_signal(self, signum, _frame):
        self.stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)

    def run(self):
        session = bots.BotSession(bot_id=self.bot_id, status=bots.BotStatus.OK)
        session.worker.configs.add(key="capacity", value="1")
        device = session.worker.devices.add(handle="host")
        for pair in self.args.property:
            key, _, value = pair.partition("=")
            device.properties.add(key=key, value=value)
        request = bots.CreateBotSessionRequest(parent=self.args.instance, bot_session=session)
        # Under 3.75 s BuildGrid does not wait for work: the session answers at once.
        session = self.call(self.bots.CreateBotSession, request, timeout=3.0)
        if session is None:
            log("stopped before a session existed")
            return
        log(f"session {session.name}")
        deadline = time.monotonic() + self.args.max_seconds
        while not self.stopping and time.monotonic() < deadline:
            for lease in session.leases:
                if lease.state == bots.LeaseState.ACTIVE and not self.stopping:
                    self.work(lease)
            if self.stopping:
                break
            request = bots.UpdateBotSessionRequest(name=session.name, bot_session=session)
            try:
                session = self.call(self.bots.UpdateBotSession, request) or session
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    log(f"UpdateBotSession failed: {error.code()}: {error.details()}")
                    time.sleep(0.5)
        self.leave(session)

    def call(self, method, request, timeout=POLL_SECONDS):
        """One long-poll; None if a signal came first (the call is then cancelled)."""
        future = method.future(request, timeout=timeout)
        while not future.done():
            if self.stopping:
                future.cancel()
                return None
            time.sleep(0.05)
        return future.result()

    def leave(self, session):
        """Tells BuildGrid this bot is going away, so it gets no more work."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        session.status = bots.BotStatus.BOT_TERMINATING
        try:
            self.bots.UpdateBotSession(
                bots.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=5
            )
            log(f"left session {session.name}")
        except grpc.RpcError as error:
            log(f"leaving session {session.name} failed: {error.code()}: {error.details()}")

    def work(self, lease):
        try:
            result = self.execute(lease.payload)
            lease.result.Pack(result)
            lease.status.code = 0
        except Exception as error:  # the lease reports it; the bot goes on
            log(f"lease {lease.id} failed: {error!r}")
            lease.status.code = GRPC_INTERNAL
            lease.status.message = f"sykli test bot: {error!r}"[:1000]
        lease.state = bots.LeaseState.COMPLETED

    def execute(self, payload):
        if payload.Is(reapi.Action.DESCRIPTOR):
            action = reapi.Action()
            payload.Unpack(action)
        elif payload.Is(reapi.Digest.DESCRIPTOR):
            digest = reapi.Digest()
            payload.Unpack(digest)
            action = reapi.Action.FromString(self.blobs.get(digest))
        else:
            raise RuntimeError(f"unknown lease payload {payload.type_url}")
        command = reapi.Command.FromString(self.blobs.get(action.command_digest))
        root = tempfile.mkdtemp(prefix="sykli-test-bot-")
        try:
            return self.run_command(action, command, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def run_command(self, action, command, root):
        materialise(self.blobs, action.input_root_digest, root)
        workdir = os.path.join(root, command.working_directory)
        os.makedirs(workdir, exist_ok=True)
        outputs = list(command.output_paths) or (
            list(command.output_files) + list(command.output_directories)
        )
        for output in outputs:
            os.makedirs(os.path.dirname(os.path.join(workdir, output)), exist_ok=True)
        environment = {v.name: v.value for v in command.environment_variables}
        limit = action.timeout.seconds or self.args.max_seconds
        started = time.monotonic()
        self.child = subprocess.Popen(
            list(command.arguments),
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = self.child.communicate(timeout=limit)
            exit_code = self.child.returncode
        except subprocess.TimeoutExpired:
            os.killpg(self.child.pid, signal.SIGKILL)
            stdout, stderr = self.child.communicate()
            stderr += f"\nsykli test bot: timed out after {limit}s\n".encode()
            exit_code = 124
        finally:
            self.child = None
        result = reapi.ActionResult(exit_code=exit_code)
        result.stdout_digest.CopyFrom(self.blobs.put(stdout))
        result.stderr_digest.CopyFrom(self.blobs.put(stderr))
        result.execution_metadata.worker = self.bot_id
        for output in outputs:
            path = os.path.join(workdir, output)
            if os.path.isdir(path) and not os.path.islink(path):
                top, below = upload_tree(self.blobs, path)
                tree = reapi.Tree(root=top, children=below)
                digest = self.blobs.put(tree.SerializeToString())
                result.output_directories.add(path=output, tree_digest=digest)
            elif os.path.isfile(path):
                executable = bool(os.stat(path).st_mode & stat.S_IXUSR)
                result.output_files.add(
                    path=output, digest=self.blobs.put_file(path), is_executable=executable
                )
        took = time.monotonic() - started
        log(f"ran {list(command.arguments)[:3]} exit={exit_code} in {took:.3f}s")
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote", required=True, help="HOST:PORT of BuildGrid's Bots service")
    parser.add_argument("--instance", default="")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument(
        "--property", action="append", default=[], help="KEY=VALUE platform property (repeatable)"
    )
    bot = Bot(parser.parse_args())
    signal.signal(signal.SIGTERM, bot.on_signal)
    signal.signal(signal.SIGINT, bot.on_signal)
    bot.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
