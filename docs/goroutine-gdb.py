# libgoroutine's gdb extension: lists goroutines and backtraces any one of them.
#
#   (gdb) source docs/goroutine-gdb.py
#   (gdb) info goroutines          every goroutine: id, name, state (what it waits on
#                                  and for how long), the thread running it, the
#                                  function it runs and where it was spawned
#   (gdb) goroutine 5 bt           backtrace of goroutine 5 (also `bt full`, `bt 10`)
#
# Works on a live process (run under gdb or attached) and on a core file, with the
# library as built by `make` (or stripped: nothing here needs its debug info).
#
# How it reads the runtime. The release library carries line tables only (Cargo.toml:
# debug = 1), not the layout of Rust types, and layouts are the compiler's choice. So
# the library exports `gr_debug_table` (src/ffi/debug.rs), a versioned table of plain
# 8-byte words: where the descriptor table is (an array of chunk pointers and the
# count of descriptors carved), the size of a descriptor and the offsets of the fields
# read here, the arrays of state and wait-reason names, the clock that wait times are
# measured on, and the address of gr_ctx_switch. This is how Go's runtime-gdb.py
# reads the Go runtime through its own symbols; the script checks the table's magic
# and version and reads only fields it knows.
#
# How it backtraces a goroutine that is not running. A switched-out goroutine's only
# saved state is its stack pointer (`saved_sp`): gr_ctx_switch (src/arch/x86_64.S)
# pushed the callee-saved registers and the return address below it, and its
# call-frame information (CFI) tells a debugger how to find them from a stack pointer
# and a pc inside gr_ctx_switch. For the length of one command this script registers
# a gdb frame unwinder that gives the current thread's innermost frame a "caller"
# with pc = the instruction of gr_ctx_switch right after the context is saved and
# sp = saved_sp; gdb's own DWARF unwinder then walks the goroutine's stack from
# there, through gr_ctx_switch's CFI, down to the entry trampoline, where the CFI says
# to stop. No register of any thread is written (gdb cannot write registers in a core
# file), so the same code serves live processes and core files; the thread's own
# frame #0 is left out of what is printed. A running goroutine has a thread: the one
# whose stack pointer lies in the goroutine's stack; its backtrace is that thread's.
#
# Read only: the script never writes to the inferior and never resumes it.

import struct

import gdb
from gdb.unwinder import Unwinder, register_unwinder

TABLE_MAGIC = int.from_bytes(b"grdebug\0", "little")

# The words of gr_debug_table, version 1, in order (see DebugTable in src/ffi/debug.rs).
TABLE_FIELDS = (
    "magic", "version", "size",
    "chunks", "max_chunks", "chunk_bits", "carved", "max_descs", "g_size",
    "off_saved_sp", "off_status", "off_gen", "off_idx", "off_func",
    "off_wait_reason", "off_wait_since", "off_parent", "off_parent_func",
    "off_name", "name_len", "off_stack_lo", "off_stack_hi", "off_lockedm",
    "status_names", "n_status", "reason_names", "n_reasons",
    "coarse_now", "ctx_switch",
)

# Values of a descriptor's status (src/runtime/g.rs); their names come from the table.
FREE, RUNNABLE, RUNNING, WAITING, DEAD = range(5)
# The wait reason of a goroutine in a blocking call (it is RUNNING on its thread).
REASON_BLOCKING = 10


def read(addr, n):
    return bytes(gdb.selected_inferior().read_memory(addr, n))


def u64(addr):
    return struct.unpack("<Q", read(addr, 8))[0]


def c_string(addr, limit=256):
    out = b""
    while len(out) < limit:
        chunk = read(addr + len(out), 16)
        if b"\0" in chunk:
            return (out + chunk[: chunk.index(b"\0")]).decode("utf-8", "replace")
        out += chunk
    return out.decode("utf-8", "replace")


class Table:
    """gr_debug_table of the library loaded in the selected inferior."""

    def __init__(self):
        try:
            addr = int(gdb.parse_and_eval("(unsigned long) &gr_debug_table"))
        except gdb.error:
            raise gdb.GdbError("libgoroutine is not loaded (no gr_debug_table symbol)")
        head = struct.unpack("<3Q", read(addr, 24))
        if head[0] != TABLE_MAGIC or head[1] < 1:
            raise gdb.GdbError("gr_debug_table at 0x%x is not a libgoroutine table" % addr)
        n = min(len(TABLE_FIELDS), head[2] // 8)
        if n < len(TABLE_FIELDS):
            raise gdb.GdbError("gr_debug_table is older than this script")
        for name, value in zip(TABLE_FIELDS, struct.unpack("<%dQ" % n, read(addr, 8 * n))):
            setattr(self, name, value)
        self.status_name = [c_string(u64(self.status_names + 8 * i)) for i in range(self.n_status)]
        self.reason_name = [c_string(u64(self.reason_names + 8 * i)) for i in range(self.n_reasons)]

    def now(self):
        return struct.unpack("<q", read(self.coarse_now, 8))[0]

    def goroutines(self):
        """Every descriptor in use, as a Goroutine, in index order."""
        carved = u64(self.carved)
        per_chunk = 1 << self.chunk_bits
        for c in range((carved + per_chunk - 1) // per_chunk):
            base = u64(self.chunks + 8 * c)
            if base == 0:
                continue
            count = min(per_chunk, carved - c * per_chunk)
            data = read(base, count * self.g_size)
            for i in range(count):
                g = Goroutine(self, base + i * self.g_size, data[i * self.g_size:(i + 1) * self.g_size])
                if g.status != FREE:
                    yield g

    def find(self, gid):
        for g in self.goroutines():
            if g.id == gid:
                return g
        return None


class Goroutine:
    """One descriptor, decoded."""

    def __init__(self, t, addr, raw):
        def word(off, fmt="<Q"):
            return struct.unpack_from(fmt, raw, off)[0]

        self.table = t
        self.addr = addr
        self.status = word(t.off_status, "<I")
        gen = word(t.off_gen, "<I")
        idx = word(t.off_idx, "<I")
        self.id = gen * t.max_descs + idx + 1
        name = raw[t.off_name:t.off_name + t.name_len].split(b"\0")[0]
        self.name = name.decode("utf-8", "replace") or "unnamed"
        self.saved_sp = word(t.off_saved_sp)
        self.func = word(t.off_func)
        self.wait_reason = raw[t.off_wait_reason]
        self.wait_since = word(t.off_wait_since, "<q")
        self.parent = word(t.off_parent, "<q")
        self.parent_func = word(t.off_parent_func)
        self.stack_lo = word(t.off_stack_lo)
        self.stack_hi = word(t.off_stack_hi)
        self.locked = word(t.off_lockedm) != 0

    def running(self):
        return self.status == RUNNING

    def state(self, now):
        t = self.table
        waited = "%d ms" % (max(0, now - self.wait_since) // 1000000)
        if self.status == WAITING:
            reason = t.reason_name[self.wait_reason] if self.wait_reason < len(t.reason_name) else "waiting"
            return "waiting: %s, %s" % (reason, waited)
        if self.status == RUNNING and self.wait_reason == REASON_BLOCKING:
            return "running: blocking call, %s" % waited
        if self.status < len(t.status_name):
            return t.status_name[self.status]
        return "status %d" % self.status

    def spawn_site(self):
        if self.parent <= 0:
            return "a plain thread"
        return "%s in goroutine %d" % (function_at(self.parent_func), self.parent)


def function_at(pc):
    """`name (file:line)` of a code address, or its address when gdb knows no name."""
    if pc == 0:
        return "?"
    text = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    if text.startswith("No symbol"):
        return "0x%x" % pc
    name = text.split(" in section ")[0].replace(" + ", "+")
    sal = gdb.find_pc_line(pc)
    if sal.symtab is not None and sal.line:
        name += " (%s:%d)" % (sal.symtab.filename, sal.line)
    return name


class SelectionKept:
    """Restores the selected thread and frame level after the body."""

    def __enter__(self):
        self.thread = gdb.selected_thread()
        try:
            self.level = gdb.selected_frame().level()
        except gdb.error:
            self.level = None
        return self

    def __exit__(self, *exc):
        if self.thread is not None and self.thread.is_valid():
            self.thread.switch()
            if self.level:
                try:
                    gdb.execute("frame %d" % self.level, to_string=True)
                except gdb.error:
                    pass
        return False


def threads_by_stack_pointer():
    """(thread, sp) of each thread of the selected inferior."""
    out = []
    with SelectionKept():
        for th in gdb.selected_inferior().threads():
            th.switch()
            try:
                out.append((th, int(gdb.newest_frame().read_register("rsp"))))
            except gdb.error:
                pass
    return out


def thread_of(g, threads):
    for th, sp in threads:
        if g.stack_lo <= sp < g.stack_hi:
            return th
    return None


def describe_thread(th):
    return "thread %d (LWP %d)" % (th.num, th.ptid[1])


class InfoGoroutines(gdb.Command):
    """List libgoroutine's goroutines: id, name, state (for a waiting one, what it
waits on and for how long), the thread running it, the function it runs and where
it was spawned. `*` marks the goroutine of the selected thread."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        t = Table()
        now = t.now()
        threads = threads_by_stack_pointer()
        selected = gdb.selected_thread()
        gs = list(t.goroutines())
        gdb.write("%d goroutines\n" % len(gs))
        gdb.write("  %-6s %-24s %-34s %-24s %s\n" % ("Id", "Name", "State", "Thread", "Runs / created by"))
        for g in gs:
            th = thread_of(g, threads) if g.running() else None
            mark = "*" if th is not None and th == selected else " "
            state = g.state(now) + (", locked to thread" if g.locked else "")
            gdb.write("%s %-6d %-24s %-34s %-24s %s\n" % (
                mark, g.id, g.name, state, describe_thread(th) if th else "-", function_at(g.func)))
            gdb.write("  %-6s %-24s %-34s %-24s created by %s\n" % ("", "", "", "", g.spawn_site()))


class SavedContextUnwinder(Unwinder):
    """While `saved_sp` is set: the innermost frame of the current thread gets, as its
    caller, the saved context of a switched-out goroutine (see the top of the file)."""

    def __init__(self):
        super().__init__("libgoroutine saved context")
        self.saved_sp = None
        self.pc = None

    def __call__(self, pending_frame):
        if self.saved_sp is None or pending_frame.level() != 0:
            return None
        sp = pending_frame.read_register("rsp")
        pc = pending_frame.read_register("rip")
        # The frame's id gets stack address 0, below everything: gdb stops a backtrace
        # whose next frame is "inner" (lower) than the one before, and the goroutine's
        # stack may lie anywhere relative to this thread's.
        info = pending_frame.create_unwind_info(FrameId(gdb.Value(0).cast(sp.type), pc))
        info.add_saved_register("rip", gdb.Value(self.pc).cast(pc.type))
        info.add_saved_register("rsp", gdb.Value(self.saved_sp).cast(sp.type))
        return info


class FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


UNWINDER = SavedContextUnwinder()
register_unwinder(None, UNWINDER, replace=True)


def resume_pc(t):
    """The address in gr_ctx_switch just after a context is saved (the `mov %rsi,
    %rsp` that switches stacks): there the CFI describes the whole saved frame."""
    arch = gdb.selected_inferior().architecture()
    for insn in arch.disassemble(t.ctx_switch, count=32):
        text = " ".join(insn["asm"].split())
        if text in ("mov %rsi,%rsp", "mov rsp,rsi"):
            return insn["addr"]
    raise gdb.GdbError("gr_ctx_switch at 0x%x: no stack switch found" % t.ctx_switch)


def backtrace_saved(t, g, bt_args):
    """The backtrace of switched-out goroutine g, as gdb prints it, without the
    current thread's own frame #0."""
    args = bt_args.split()
    if args and args[0].lstrip("-").isdigit():
        args[0] = str(int(args[0]) + (1 if int(args[0]) > 0 else 0))
    UNWINDER.saved_sp, UNWINDER.pc = g.saved_sp, resume_pc(t)
    gdb.invalidate_cached_frames()
    try:
        text = gdb.execute("bt " + " ".join(args), to_string=True)
    finally:
        UNWINDER.saved_sp = None
        gdb.invalidate_cached_frames()
    out, keep = [], False
    for line in text.splitlines(True):
        if line.startswith("#"):
            keep = not line.startswith("#0 ")
        if keep:
            out.append(line)
    return "".join(out)


class GoroutineCommand(gdb.Command):
    """goroutine ID bt [full|N]: print the backtrace of goroutine ID.
A running goroutine's backtrace is its thread's. A switched-out one (waiting or
runnable) is unwound from its saved context; its frames are numbered from #1 (frame
#0 is the current thread's own frame, left out)."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        words = arg.split(None, 2)
        if len(words) < 2 or not words[0].isdigit() or words[1] not in ("bt", "backtrace"):
            raise gdb.GdbError("usage: goroutine ID bt [full|N]")
        gid, bt_args = int(words[0]), words[2] if len(words) > 2 else ""
        t = Table()
        g = t.find(gid)
        if g is None:
            raise gdb.GdbError("no goroutine %d" % gid)
        gdb.write("goroutine %d (%s) [%s]:\n" % (g.id, g.name, g.state(t.now())))
        if g.running():
            th = thread_of(g, threads_by_stack_pointer())
            if th is None:
                raise gdb.GdbError("goroutine %d is running, but no thread's stack pointer is in its stack" % gid)
            gdb.write("running on %s\n" % describe_thread(th))
            with SelectionKept():
                th.switch()
                gdb.write(gdb.execute("bt " + bt_args, to_string=True))
            return
        if g.saved_sp == 0:
            gdb.write("has not started yet; it will run %s\n" % function_at(g.func))
            return
        with SelectionKept():
            gdb.write(backtrace_saved(t, g, bt_args))


InfoGoroutines()
GoroutineCommand()
