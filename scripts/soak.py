#!/usr/bin/env python3
"""WhyCache's fault-injection harness: kill anywhere, damage anywhere, run out
of space, read under a writer — through the built `whycache-tool` and
`whycache-test-helper`, as separate processes, the way operators and
services meet WhyCache.

Run it with scripts/soak.sh (which builds, and starts a private MariaDB
server for the MySQL phases); docs/RELIABILITY.md explains the figures.
Every phase prints JSON lines: one per finding (`"event": "failure"`) and one
summary per phase (`"event": "phase"`) with its figures; the last line is
`N passed, N failed` (checks), and the exit status is 1 when any check
failed.

A check fails for: a process killed by a signal it was not sent (a crash), a
command that does not finish within its time limit (a hang), an
acknowledged write missing from a state that `verify` finds equal to the
log, an update id handed out twice, a state file or log that `verify` or a
reader rejects after a process was killed, an answer that differs from the
undamaged one while `verify` calls the state equal (a silent wrong answer),
a write that turns a state `verify` accepted into one it rejects (damage
spread), a damaged snapshot or log restored or applied into a state that
differs from every state of the undamaged log, a restore that fails but
changed the file it was to replace, a lock still held after its holder was
killed, and a torn read.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

TIME_LIMIT = 120  # seconds a single command may take before it counts as a hang


class Outcome:
    """The result of one command: its exit status (negative: the signal
    that ended it; None: it hung and was killed), stdout and stderr."""

    def __init__(self, status, out, err):
        self.status, self.out, self.err = status, out, err

    @property
    def crashed(self):
        return self.status is not None and self.status < 0

    @property
    def hung(self):
        return self.status is None

    def lines(self):
        return self.out.decode("utf-8", "replace").splitlines()


class Harness:
    def __init__(self, root, tool, helper, seed, mysql):
        self.root, self.tool, self.helper = root, tool, helper
        self.random = random.Random(seed)
        self.mysql = mysql  # None, or the environment of the test server
        self.passed = 0
        self.failed = 0

    # -- output ---------------------------------------------------------

    def emit(self, **fields):
        print(json.dumps(fields, sort_keys=True), flush=True)

    def check(self, ok, phase, what, **details):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.emit(event="failure", phase=phase, check=what, **details)
        return ok

    # -- running commands -------------------------------------------------

    def run(self, arguments, executable=None, environment=None, stdin=None, limit=TIME_LIMIT):
        command = [executable or self.tool] + arguments
        env = dict(os.environ)
        if environment:
            env.update(environment)
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, timeout=limit, env=env)
            return Outcome(done.returncode, done.stdout, done.stderr)
        except subprocess.TimeoutExpired as expired:
            return Outcome(None, expired.stdout or b"", expired.stderr or b"")

    def start(self, arguments, executable=None, environment=None):
        env = dict(os.environ)
        if environment:
            env.update(environment)
        return subprocess.Popen([executable or self.tool] + arguments, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)

    def kill_after(self, process, seconds):
        """Waits `seconds` (or until the process ends), SIGKILLs it if it
        still runs; returns (was_killed, outcome)."""
        try:
            process.wait(timeout=seconds)
            killed = False
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            killed = True
        out, err = process.communicate()
        return killed, Outcome(process.returncode, out, err)

    def store_options(self, store, state):
        options = []
        if store is not None:
            options += ["--store", store]
        if state is not None:
            options += ["--state", state]
        return options

    # -- phase: torn reads ------------------------------------------------

    def torn_reads(self, target_reads):
        """A writer rewrites groups of keys, each group in one transaction;
        readers check through pinned snapshots that every group is whole."""
        phase = "torn-reads"
        directory = tempfile.mkdtemp(dir=self.root)
        path = directory + "/state"
        reads = torn = rounds = 0
        while reads < target_reads:
            rounds += 1
            writer = self.start(["state-group-writer", path, "64", "8", "4000000"], executable=self.helper)
            time.sleep(0.2)
            readers = [self.start(["state-group-reader", path, "64", "8", "10"], executable=self.helper) for _ in range(2)]
            for reader in readers:
                out, err = reader.communicate()
                self.check(reader.returncode is not None and reader.returncode >= 0, phase, "reader crashed",
                           status=reader.returncode, errors=err.decode("utf-8", "replace")[-500:])
                figures = [line.split() for line in out.decode().splitlines() if line.startswith("reads ")]
                if figures and len(figures[-1]) == 4:
                    reads += int(figures[-1][1])
                    torn += int(figures[-1][3])
                else:
                    self.check(False, phase, "reader printed no figures", output=out.decode()[-300:])
            writer.send_signal(signal.SIGKILL)
            writer.communicate()
        self.check(torn == 0, phase, "torn reads", torn=torn)
        self.emit(event="phase", phase=phase, reads=reads, torn=torn, rounds=rounds)
        shutil.rmtree(directory, ignore_errors=True)

    # -- phase: kill anywhere ---------------------------------------------

    def kill_anywhere(self, cycles, kind):
        """Kills writers (single and multi-key records, one task or many
        coalesced), updates, followers, history rewrites, snapshots and
        restores at random moments, and checks the log and the states after
        each kill."""
        phase = "kill-anywhere-" + kind
        figures = dict(cycles=0, killed=0, finished_first=0, acknowledged=0, lost=0, ids_reused=0,
                       corrupt=0, stuck_locks=0, crashes=0, hangs=0, logs=0)
        directory = None
        victims = ["writer", "writer-coalesced", "update", "follow", "rewrite", "snapshot", "restore"]
        for cycle in range(cycles):
            # A fresh log every 100 cycles keeps each cycle's checks (a replay
            # of the whole log) from growing with the run.
            if cycle % self.cycles_per_log == 0:
                if directory:
                    shutil.rmtree(directory, ignore_errors=True)
                directory, store, helper_store, environment = self.new_log(kind)
                machine, writer_state, restored = directory + "/machine", directory + "/writer", directory + "/restored"
                snapshot_file = directory + "/snapshot"
                self.check(self.run(["init-store"] + self.store_options(store, None), environment=environment).status == 0,
                           phase, "init-store")
                acknowledged = {}  # (tag, write index) -> update id
                ids_seen = set()
                figures["logs"] += 1
            figures["cycles"] += 1
            victim = victims[cycle % len(victims)] if cycle < len(victims) else self.random.choice(victims)
            tag = "c%d" % cycle
            if victim in ("writer", "writer-coalesced"):
                tasks = "1" if victim == "writer" else "8"
                process = self.start(["cache-set-forever", helper_store, writer_state, tag, tasks],
                                     executable=self.helper, environment=environment)
                delay = self.random.uniform(0.05, 0.6)
            elif victim == "update":
                process = self.start(["update"] + self.store_options(store, machine), environment=environment)
                delay = self.random.uniform(0.0, 0.15)
            elif victim == "follow":
                process = self.start(["follow", "--interval", "0.02"] + self.store_options(store, machine),
                                     environment=environment)
                delay = self.random.uniform(0.05, 0.4)
            elif victim == "rewrite":
                process = self.start(["rewrite-history", "--through", "latest", "--scratch", directory]
                                     + self.store_options(store, None), environment=environment)
                delay = self.random.uniform(0.0, 0.3)
            elif victim == "snapshot":
                process = self.start(["snapshot", "--out", snapshot_file] + (["--gzip"] if cycle % 2 else [])
                                     + self.store_options(None, writer_state), environment=environment)
                delay = self.random.uniform(0.0, 0.1)
            else:
                if not os.path.exists(snapshot_file):
                    continue
                process = self.start(["restore", "--from", snapshot_file, "--force"]
                                     + self.store_options(store, restored), environment=environment)
                delay = self.random.uniform(0.0, 0.1)
            killed, outcome = self.kill_after(process, delay)
            figures["killed" if killed else "finished_first"] += 1
            if not killed:
                ok = outcome.status is not None and outcome.status >= 0
                figures["crashes"] += 0 if ok else 1
                self.check(ok, phase, "a victim crashed", victim=victim, status=outcome.status,
                           errors=outcome.err.decode("utf-8", "replace")[-500:])
            # Writes coalesced into one append share its id; an id handed
            # out in an earlier cycle must never come back.
            ids_of_cycle = set()
            for line in outcome.lines():
                words = line.split()
                if len(words) == 3 and words[0] == "set":
                    index, update_id = int(words[1]), int(words[2])
                    acknowledged[(tag, index)] = update_id
                    figures["acknowledged"] += 1
                    if update_id not in ids_of_cycle and not self.check(
                            update_id not in ids_seen, phase, "an update id was handed out twice", victim=victim, id=update_id):
                        figures["ids_reused"] += 1
                    ids_of_cycle.add(update_id)
            ids_seen |= ids_of_cycle
            # No lock is left held: the log takes a write at once (a sentinel).
            sentinel = self.run(["set", "sentinel", str(cycle)] + self.store_options(store, machine),
                                environment=environment, limit=60)
            if sentinel.hung:
                figures["stuck_locks"] += 1
            if self.check(sentinel.status == 0, phase, "the log took no write after a kill", victim=victim,
                          status=sentinel.status, errors=sentinel.err.decode("utf-8", "replace")[-500:]):
                sentinel_id = int(sentinel.lines()[-1])
                if not self.check(sentinel_id not in ids_seen, phase, "an update id was handed out twice",
                                  victim=victim, id=sentinel_id):
                    figures["ids_reused"] += 1
                ids_seen.add(sentinel_id)
            if kind == "file":
                problem = log_problem(directory + "/log")
                if not self.check(problem is None, phase, "the log's ids are not contiguous", problem=problem):
                    figures["corrupt"] += 1
            # Every state equals the log; the machines hold every acknowledged write.
            for state in (machine, writer_state, restored):
                if not os.path.exists(state):
                    continue
                update = self.run(["update"] + self.store_options(store, state), environment=environment)
                verify = self.run(["verify", "--scratch", directory] + self.store_options(store, state),
                                  environment=environment)
                ok = update.status == 0 and verify.status == 0
                if not self.check(ok, phase, "a state is not equal to the log after a kill", victim=victim,
                                  state=os.path.basename(state), update=update.status, verify=verify.status,
                                  errors=(update.err + verify.err).decode("utf-8", "replace")[-500:]):
                    figures["corrupt"] += 1
            if cycle % 10 == 9 or cycle == cycles - 1 or cycle % self.cycles_per_log == self.cycles_per_log - 1:
                keys = self.run(["keys"] + self.store_options(None, machine), environment=environment)
                present = set(keys.lines())
                lost = {k for k in acknowledged if "%s-%d-0" % k not in present}
                if not self.check(not lost, phase, "acknowledged writes are missing",
                                  missing=["%s-%d-0" % k for k in sorted(lost)[:10]]):
                    # Counted once: a loss is not reported again at the next check.
                    figures["lost"] += len(lost)
                    acknowledged = {k: v for k, v in acknowledged.items() if k not in lost}
        self.emit(event="phase", phase=phase, **figures)
        shutil.rmtree(directory, ignore_errors=True)

    #: Kill cycles per log: every this many cycles the phase starts on a new log.
    cycles_per_log = 100

    def new_log(self, kind):
        """A new, empty log for a kill phase: its folder, `--store` URL, the
        test helper's store spec and the environment its commands need."""
        directory = tempfile.mkdtemp(dir=self.root)
        if kind == "file":
            return directory, "file://" + directory + "/log", directory + "/log", None
        table = "soak_%d_%d" % (os.getpid(), self.random.randrange(1 << 30))
        store, helper_store, environment = self.mysql_store(table)
        return directory, store, helper_store, environment

    def mysql_store(self, table):
        env = self.mysql
        # A connection may wait for the server's greeting longer than the
        # 5 s default while the machine is loaded (as the test suite's do).
        store = "mysql://%s@%s:%s/%s?table=%s&connect-timeout=30" % (env["WHYCACHE_TEST_MYSQL_USER"], env["WHYCACHE_TEST_MYSQL_HOST"],
                                                  env["WHYCACHE_TEST_MYSQL_PORT"], env["WHYCACHE_TEST_MYSQL_DATABASE"], table)
        environment = dict(env)
        environment["WHYCACHE_MYSQL_PASSWORD"] = env["WHYCACHE_TEST_MYSQL_PASSWORD"]
        return store, "mysql:" + table, environment

    # -- phase: damage anywhere -------------------------------------------

    def damage_anywhere(self, mutants, workers):
        """Damages copies of a state file, log segments, a checkpoint and
        snapshots (plain and gzip), and drives each through the tool's read
        and write paths, `workers` mutants at a time. The mutants are made
        in order from the seed and their verdicts counted in that order, so a
        seed damages the same bytes whatever `workers` is."""
        phase = "damage-anywhere"
        fixture = Fixture(self)
        figures = dict(mutants=0, crashes=0, hangs=0, silent_wrong_answers=0, damage_spread=0,
                       detected_by_verify=0, refused=0, harmless=0)
        for target in ("state", "segment", "checkpoint", "snapshot", "snapshot-gzip"):
            figures["mutants_" + target] = 0
        kinds = ["state"] * 4 + ["segment"] * 3 + ["checkpoint"] * 1 + ["snapshot"] * 1 + ["snapshot-gzip"] * 1

        def count(target, work, description, drive):
            verdict = drive.result()
            figures["mutants"] += 1
            figures["mutants_" + target] += 1
            for name in verdict:
                figures[name] = figures.get(name, 0) + 1
            failures = [name for name in verdict if name in ("crashes", "hangs", "silent_wrong_answers", "damage_spread")]
            self.check(not failures, phase, "damage was not handled", target=target, mutation=description,
                       findings=verdict[failures[0]] if failures else None)
            shutil.rmtree(work, ignore_errors=True)

        # The tool runs as separate processes, so threads that wait for them
        # run the mutants in parallel; a few are made ahead, not all of them.
        pending = collections.deque()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for number in range(mutants):
                target = kinds[number % len(kinds)]
                work = tempfile.mkdtemp(dir=self.root)
                shutil.copytree(fixture.directory, work, dirs_exist_ok=True)
                description = fixture.mutate(work, target, self.random)
                pending.append((target, work, description, pool.submit(fixture.drive, work, target)))
                while len(pending) > 2 * workers:
                    count(*pending.popleft())
            while pending:
                count(*pending.popleft())
        self.emit(event="phase", phase=phase, **figures)
        shutil.rmtree(fixture.directory, ignore_errors=True)

    # -- phase: resources --------------------------------------------------

    def full_disk(self, rounds):
        """Runs set, update, snapshot, restore and rewrite-history on a
        small file system that is full, then frees space: each fails
        cleanly, keeps the earlier data, and works again."""
        phase = "full-disk"
        if os.geteuid() != 0:
            self.emit(event="phase", phase=phase, skipped="mounting a small tmpfs needs root")
            return
        mount = tempfile.mkdtemp(dir=self.root)
        figures = dict(rounds=0, clean_errors=0, succeeded_anyway=0, crashes=0, data_lost=0, recovered=0)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]).returncode != 0:
            self.check(False, phase, "could not mount a tmpfs")
            return
        try:
            store, state = "file://" + mount + "/log", mount + "/state"
            options = self.store_options(store, state)
            self.check(self.run(["init-store"] + options).status == 0, phase, "init-store")
            for index in range(20):
                self.run(["set", "base-%d" % index, "x" * 200] + options)
            snapshot = mount + "/snapshot"
            self.check(self.run(["snapshot", "--out", snapshot] + options).status == 0, phase, "snapshot before")
            for round_number in range(rounds):
                figures["rounds"] += 1
                filler = mount + "/filler"
                with open(filler, "wb") as handle:
                    try:
                        while True:
                            handle.write(b"\0" * 65536)
                            handle.flush()
                    except OSError:
                        pass
                commands = [
                    ["set", "full-%d" % round_number, "y" * 5000] + options,
                    ["update"] + options,
                    ["snapshot", "--out", mount + "/snapshot-2"] + options,
                    ["restore", "--from", snapshot, "--force", "--store", store, "--state", mount + "/restored"],
                    ["rewrite-history", "--through", "latest", "--scratch", mount] + self.store_options(store, None),
                ]
                for command in commands:
                    outcome = self.run(command)
                    clean = outcome.status in (0, 3)
                    if outcome.status == 3:
                        figures["clean_errors"] += 1
                    elif outcome.status == 0:
                        figures["succeeded_anyway"] += 1
                    if not self.check(clean, phase, "a command on a full disk did not fail cleanly", command=command[0],
                                      status=outcome.status, errors=outcome.err.decode("utf-8", "replace")[-300:]):
                        figures["crashes"] += 1
                get = self.run(["get", "base-7"] + self.store_options(None, state))
                if not self.check(get.status == 0 and get.lines() == ["x" * 200], phase, "data lost on a full disk",
                                  status=get.status):
                    figures["data_lost"] += 1
                os.remove(filler)
                for path in os.listdir(mount):
                    if ".partial." in path or path.startswith("whycache-"):
                        full = os.path.join(mount, path)
                        shutil.rmtree(full, ignore_errors=True) if os.path.isdir(full) else os.remove(full)
                again = self.run(["set", "after-%d" % round_number, "z"] + options)
                verify = self.run(["verify", "--scratch", mount] + options)
                if self.check(again.status == 0 and verify.status == 0, phase, "not working again after space was freed",
                              set=again.status, verify=verify.status,
                              errors=(again.err + verify.err).decode("utf-8", "replace")[-300:]):
                    figures["recovered"] += 1
        finally:
            subprocess.run(["umount", mount])
            os.rmdir(mount)
        self.emit(event="phase", phase=phase, **figures)

    def mysql_restarts(self, rounds, script, directory):
        """Kills the MariaDB server (SIGKILL) while a writer writes, and
        starts it again, `rounds` times: nothing acknowledged is lost and no
        update id is handed out twice."""
        phase = "mysql-restarts"
        table = "soak_restart_%d" % os.getpid()
        store, helper_store, environment = self.mysql_store(table)
        work = tempfile.mkdtemp(dir=self.root)
        self.check(self.run(["init-store"] + self.store_options(store, None), environment=environment).status == 0,
                   phase, "init-store")
        port = self.mysql["WHYCACHE_TEST_MYSQL_PORT"]
        acknowledged, ids = {}, set()
        figures = dict(rounds=0, acknowledged=0, lost=0, ids_reused=0)
        for round_number in range(rounds):
            figures["rounds"] += 1
            tag = "r%d" % round_number
            writer = self.start(["cache-set-forever", helper_store, work + "/writer", tag, "4"], executable=self.helper,
                                environment=environment)
            time.sleep(self.random.uniform(0.2, 0.8))
            subprocess.run(["bash", script, "kill", directory], capture_output=True)
            time.sleep(0.2)
            started = subprocess.run(["bash", script, "start", directory, port], capture_output=True)
            self.check(started.returncode == 0, phase, "the server did not start again",
                       errors=started.stderr.decode("utf-8", "replace")[-300:])
            time.sleep(self.random.uniform(0.1, 0.4))
            writer.send_signal(signal.SIGKILL)
            out, _ = writer.communicate()
            # Coalesced writes share their append's id; ids of earlier rounds never come back.
            ids_of_round = set()
            for line in out.decode("utf-8", "replace").splitlines():
                words = line.split()
                if len(words) == 3 and words[0] == "set":
                    acknowledged[(tag, int(words[1]))] = int(words[2])
                    figures["acknowledged"] += 1
                    if int(words[2]) in ids:
                        figures["ids_reused"] += 1
                    ids_of_round.add(int(words[2]))
            ids |= ids_of_round
        machine = work + "/machine"
        update = self.run(["update"] + self.store_options(store, machine), environment=environment)
        self.check(update.status == 0, phase, "update after the restarts", errors=update.err.decode()[-300:])
        present = set(self.run(["keys"] + self.store_options(None, machine), environment=environment).lines())
        lost = [k for k in acknowledged if "%s-%d-0" % k not in present]
        figures["lost"] = len(lost)
        self.check(not lost, phase, "acknowledged writes lost across server restarts", missing=["%s-%d-0" % k for k in lost[:10]])
        self.check(figures["ids_reused"] == 0, phase, "update ids handed out twice across restarts")
        self.emit(event="phase", phase=phase, **figures)
        shutil.rmtree(work, ignore_errors=True)


def log_problem(directory):
    """Reads a file datastore's segments (docs/FORMAT.md section 3.5) and
    returns why their ids are not one contiguous sequence, or None. A torn
    tail (an incomplete last frame) is not a problem."""
    names = sorted(n for n in os.listdir(directory) if n.startswith("segment-") and n.endswith(".log"))
    expected = None
    for position, name in enumerate(names):
        first = int(name[len("segment-"):-len(".log")])
        if expected is not None and first != expected:
            return "segment %s starts at %d, expected %d" % (name, first, expected)
        with open(os.path.join(directory, name), "rb") as handle:
            data = handle.read()
        offset, next_id = 32, first
        while offset + 20 <= len(data):
            length, update_id = struct.unpack_from("<IQ", data, offset)
            if update_id != next_id or offset + 20 + length > len(data):
                if position == len(names) - 1:
                    break  # an unfinished write at the end of the log
                return "frame at %d of %s carries %d, expected %d" % (offset, name, update_id, next_id)
            offset += 20 + length
            next_id += 1
        expected = next_id
    return None


class Fixture:
    """An undamaged log (segments and a checkpoint), a state file and two
    snapshots, with the answers each read path gives on them."""

    def __init__(self, harness):
        self.harness = harness
        self.directory = tempfile.mkdtemp(dir=harness.root)
        d = self.directory
        self.store = "file://" + d + "/log"
        run = harness.run
        assert run(["init-store", "--store", self.store]).status == 0
        # 400 random writes (sets, deletes, multi-key sets) of 60 keys, a
        # history rewrite through 150 (a checkpoint), then the state.
        writer = run(["cache-writer", d + "/log", d + "/writer", "7", "400", "60"], executable=harness.helper)
        assert writer.status == 0, writer.err
        # The log before the rewrite replays to every position without a
        # rebuild (a rebuild from the checkpoint applies the log to its end).
        self.pristine_log = d + "/pristine-log"
        shutil.copytree(d + "/log", self.pristine_log)
        assert run(["rewrite-history", "--through", "150", "--scratch", d, "--store", self.store]).status == 0
        os.remove(d + "/writer")
        assert run(["update", "--store", self.store, "--state", d + "/state"]).status == 0
        assert run(["snapshot", "--state", d + "/state", "--out", d + "/snapshot"]).status == 0
        assert run(["snapshot", "--state", d + "/state", "--out", d + "/snapshot-gzip", "--gzip"]).status == 0
        self.latest = 400
        self.dump = run(["dump", "--state", d + "/state"]).out
        self.keys = run(["keys", "--state", d + "/state"]).out
        self.some_key = self.keys.decode().splitlines()[0]
        self.get = run(["get", self.some_key, "--state", d + "/state"]).out
        # The state at each update id of the undamaged log, made when first
        # needed: a damaged log's replay must stop at a prefix of it (or fail).
        self.prefix_dumps = {self.latest: self.dump}

    def prefix_dump(self, update_id):
        """The dump of the undamaged log's state at `update_id`, or None when
        the log never was at it."""
        if update_id is None or not 150 <= update_id <= self.latest:
            return None
        if update_id not in self.prefix_dumps:
            scratch = tempfile.mkdtemp(dir=self.harness.root) + "/state"
            store = "file://" + self.pristine_log
            assert self.harness.run(["update", "--through", str(update_id), "--store", store, "--state", scratch]).status == 0
            self.prefix_dumps[update_id] = self.harness.run(["dump", "--state", scratch]).out
            shutil.rmtree(os.path.dirname(scratch), ignore_errors=True)
        return self.prefix_dumps[update_id]

    def mutate(self, work, target, generator):
        """Damages the file `target` names in `work`; returns what it did."""
        if target == "state":
            path = work + "/state"
        elif target == "segment":
            segments = sorted(n for n in os.listdir(work + "/log") if n.startswith("segment-"))
            path = work + "/log/" + generator.choice(segments)
        elif target == "checkpoint":
            checkpoints = sorted(n for n in os.listdir(work + "/log") if n.startswith("checkpoint-"))
            path = work + "/log/" + checkpoints[-1]
        else:
            path = work + "/" + target
        with open(path, "rb") as handle:
            data = bytearray(handle.read())
        # Damage lands where the bytes are used (a state file's unused tail,
        # its room to grow, is all zeros): up to the last byte that is not.
        used = len(data.rstrip(b"\0"))
        size = used if used and generator.random() < 0.9 else len(data)
        kind = generator.choice(["flip", "flip", "flips", "zero-page", "truncate", "garbage"])
        if kind == "flip" and size:
            offset = generator.randrange(size)
            data[offset] ^= 1 << generator.randrange(8)
            what = "flip a bit at %d" % offset
        elif kind == "flips" and size:
            offsets = [generator.randrange(size) for _ in range(generator.randint(2, 16))]
            for offset in offsets:
                data[offset] ^= generator.randrange(1, 256)
            what = "change bytes at %s" % offsets
        elif kind == "zero-page" and size:
            page = generator.randrange(max(1, size // 4096 + 1)) * 4096
            data[page:page + 4096] = bytes(len(data[page:page + 4096]))
            what = "zero the page at %d" % page
        elif kind == "truncate" and size:
            cut = generator.randrange(size)
            del data[cut:]  # (a state file shorter than its header says is `truncated`)
            what = "truncate to %d" % cut
        else:
            offset = generator.randrange(max(1, size))
            length = generator.randint(1, 512)
            data[offset:offset + length] = bytes(generator.randrange(256) for _ in range(length))
            what = "garbage at %d (%d bytes)" % (offset, length)
        with open(path, "wb") as handle:
            handle.write(data)
        return "%s: %s" % (os.path.relpath(path, work), what)

    def drive(self, work, target):
        """Runs the read and write paths on the damaged copy in `work`;
        returns the findings, by figure name."""
        run = self.harness.run
        findings = {}
        store, state = "file://" + work + "/log", work + "/state"

        def note(name, detail):
            findings.setdefault(name, detail)

        def outcome_of(name, outcome):
            if outcome.hung:
                note("hangs", name)
            elif outcome.crashed:
                note("crashes", "%s: signal %d: %s" % (name, -outcome.status, outcome.err.decode("utf-8", "replace")[-300:]))
            return outcome

        if target == "state":
            verify = outcome_of("verify", run(["verify", "--scratch", work, "--store", store, "--state", state]))
            equal = verify.status == 0
            reads = {
                "get": (run(["get", self.some_key, "--state", state]), self.get),
                "keys": (run(["keys", "--state", state]), self.keys),
                "dump": (run(["dump", "--state", state]), self.dump),
            }
            outcome_of("stat", run(["stat", "--state", state]))
            wrong = [name for name, (outcome, expected) in reads.items()
                     if outcome_of(name, outcome).status == 0 and outcome.out != expected]
            if wrong and equal:
                note("silent_wrong_answers", "%s differ while verify calls the state equal" % wrong)
            elif wrong:
                note("detected_by_verify", wrong)
            elif verify.status == 3:
                note("refused", "verify")
            else:
                note("harmless", True)
            snapshot = outcome_of("snapshot", run(["snapshot", "--state", state, "--out", work + "/copy"]))
            for name, command in (("set", ["set", "added", "v", "--store", store, "--state", state]),
                                  ("update", ["update", "--store", store, "--state", state])):
                written = outcome_of(name, run(command))
                if written.status == 0 and equal:
                    after = run(["verify", "--scratch", work, "--store", store, "--state", state])
                    if after.status != 0:
                        note("damage_spread", "%s turned a state verify accepted into one it rejects: %s" % (
                            name, after.out.decode("utf-8", "replace")[-200:]))
            if snapshot.status == 0 and equal:
                restored = run(["restore", "--from", work + "/copy", "--store", store, "--state", work + "/from-copy"])
                if restored.status == 0 and run(["dump", "--state", work + "/from-copy"]).out != self.dump:
                    note("damage_spread", "a snapshot of a state verify accepted restores to other contents")
        elif target in ("segment", "checkpoint"):
            fresh = work + "/fresh"
            update = outcome_of("update", run(["update", "--store", store, "--state", fresh]))
            if update.status == 0:
                stat = run(["stat", "--json", "--state", fresh])
                try:
                    position = json.loads(stat.out)["state"]["updateID"]
                except (ValueError, KeyError, TypeError):
                    position = None
                dump = run(["dump", "--state", fresh]).out
                if self.prefix_dump(position) != dump:
                    note("silent_wrong_answers", "a damaged log was applied into a state no prefix of the log has (at %s)" % position)
                else:
                    note("harmless", True)
            else:
                note("refused", "update")
            outcome_of("set", run(["set", "added", "v", "--store", store, "--state", state]))
            outcome_of("verify", run(["verify", "--scratch", work, "--store", store, "--state", state]))
        else:
            before = open(state, "rb").read()
            restore = outcome_of("restore", run(["restore", "--from", work + "/" + target, "--force", "--store", store,
                                                 "--state", state]))
            if restore.status == 0:
                if run(["dump", "--state", state]).out != self.dump:
                    note("silent_wrong_answers", "a damaged snapshot restored into other contents")
                else:
                    note("harmless", True)
            else:
                note("refused", "restore")
                if open(state, "rb").read() != before:
                    note("damage_spread", "a failed restore changed the state file")
        return findings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tool", required=True)
    parser.add_argument("--helper", required=True)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--kill-cycles", type=int, default=1000, help="per datastore")
    parser.add_argument("--mutants", type=int, default=10000)
    parser.add_argument("--damage-workers", type=int, default=os.cpu_count() or 1,
                        help="mutants driven at a time (default: one per core)")
    parser.add_argument("--torn-reads", type=int, default=10_000_000)
    parser.add_argument("--full-disk-rounds", type=int, default=5)
    parser.add_argument("--mysql-restarts", type=int, default=20)
    parser.add_argument("--mariadb-script")
    parser.add_argument("--mariadb-directory")
    parser.add_argument("--phases", default="torn-reads,kill-file,kill-mysql,damage,full-disk,mysql-restarts")
    arguments = parser.parse_args()

    mysql = None
    if os.environ.get("WHYCACHE_TEST_MYSQL_PORT"):
        mysql = {name: value for name, value in os.environ.items() if name.startswith("WHYCACHE_TEST_MYSQL_")}
    root = tempfile.mkdtemp(prefix="whycache-soak.")
    harness = Harness(root, arguments.tool, arguments.helper, arguments.seed, mysql)
    harness.emit(event="start", seed=arguments.seed, phases=arguments.phases)
    started = time.time()
    try:
        for phase in arguments.phases.split(","):
            began = time.time()
            if phase == "torn-reads":
                harness.torn_reads(arguments.torn_reads)
            elif phase == "kill-file":
                harness.kill_anywhere(arguments.kill_cycles, "file")
            elif phase == "kill-mysql":
                if mysql is None:
                    harness.emit(event="phase", phase="kill-anywhere-mysql", skipped="no MySQL server (WHYCACHE_TEST_MYSQL_*)")
                else:
                    harness.kill_anywhere(arguments.kill_cycles, "mysql")
            elif phase == "damage":
                harness.damage_anywhere(arguments.mutants, arguments.damage_workers)
            elif phase == "full-disk":
                harness.full_disk(arguments.full_disk_rounds)
            elif phase == "mysql-restarts":
                if mysql is None or not arguments.mariadb_script:
                    harness.emit(event="phase", phase="mysql-restarts", skipped="no private MariaDB server to restart")
                else:
                    harness.mysql_restarts(arguments.mysql_restarts, arguments.mariadb_script, arguments.mariadb_directory)
            else:
                parser.error("unknown phase " + phase)
            harness.emit(event="timing", phase=phase, seconds=round(time.time() - began, 1))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    harness.emit(event="end", seconds=round(time.time() - started, 1))
    print("%d passed, %d failed" % (harness.passed, harness.failed), flush=True)
    return 1 if harness.failed else 0


if __name__ == "__main__":
    sys.exit(main())
