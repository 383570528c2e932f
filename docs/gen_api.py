#!/usr/bin/env python3
"""Generates docs/api.md, the C API reference, from include/goroutine.h.

Every exported function gets a section: synopsis (the prototype), description, return
value, errors, whether it may park and who may call it, what the caller guarantees for
its pointer arguments (the comment's `# Safety` part, which the Rust export needs as
an `unsafe extern "C" fn`) (all taken from the function's doc comment in the header,
which cbindgen copies from src/ffi/*.rs), and an example
(hand-written, in docs/api_examples.md, under a `## gr_name` heading). Types and
macros get a section each too. So the reference cannot drift from the header: edit the
doc comments in src/ffi/, run `make header`, then this script.

    python3 docs/gen_api.py            rewrite docs/api.md
    python3 docs/gen_api.py --check    exit 1 if docs/api.md is not what this script
                                       would write, if a function has no example (or an
                                       example names no function), or if a C example
                                       does not compile against the header
    python3 docs/gen_api.py --lint     report doc comments that do not say what the API
                                       promises (return values, whether it parks) and
                                       names outside the gr_/GR_ namespace; exit 1 if any

tests/docs.rs runs --check and --lint. Python 3.8+, standard library only.
"""

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "include", "goroutine.h")
EXAMPLES = os.path.join(ROOT, "docs", "api_examples.md")
OUTPUT = os.path.join(ROOT, "docs", "api.md")

# Sections of the reference, in order: (title, rule). A function goes to the first
# section whose rule matches its name; one that matches none goes to "Other".
SECTIONS = [
    ("Version and errors", lambda n: n in ("gr_version", "gr_strerror")),
    ("The runtime", lambda n: n in ("gr_init", "gr_maxprocs", "gr_main", "gr_wait_all", "gr_shutdown")),
    ("Goroutines", lambda n: n in ("gr_spawn", "gr_spawn_attr", "gr_join", "gr_yield", "gr_self",
                                   "gr_count", "gr_lock_thread", "gr_unlock_thread")),
    ("Channels and select", lambda n: n.startswith("gr_chan_") or n == "gr_select"),
    ("Wait groups", lambda n: n.startswith("gr_wg_")),
    ("Mutexes", lambda n: n.startswith("gr_mutex_")),
    ("Reader/writer mutexes", lambda n: n.startswith("gr_rwmutex_")),
    ("Condition variables", lambda n: n.startswith("gr_cond_")),
    ("One-time initialisation", lambda n: n.startswith("gr_once_")),
    ("Semaphores", lambda n: n.startswith("gr_sem_")),
    ("Timers and tickers", lambda n: n.startswith("gr_timer_")),
    ("Signals and child processes", lambda n: n.startswith("gr_signal_") or n == "gr_waitpid"),
    ("Time and I/O", lambda n: n in ("gr_sleep", "gr_block_io", "gr_read", "gr_write", "gr_accept",
                                     "gr_connect", "gr_close", "gr_blocking")),
    ("Debugging", lambda n: n in ("gr_stats", "gr_dump")),
    ("Python binding internals", lambda n: n.startswith("gr_py_")),
]

SECTION_NOTES = {
    "Python binding internals":
        "These functions exist for the ctypes package in `bindings/python/` (they take "
        "and return CPython objects as `void *`, and most must be called with the GIL "
        "held); C programs have no use for them. The examples show how the binding calls "
        "them through ctypes.",
}

# What each error code means in general; a function's doc comment says what it means
# for that function (the text in parentheses after the code), which wins.
ERRNO_MEANING = {
    "EINVAL": "an argument is invalid",
    "ENOMEM": "out of memory",
    "EAGAIN": "it would have to wait, or a limit was reached",
    "ESRCH": "no such goroutine",
    "EDEADLK": "a deadlock",
    "EBUSY": "busy: goroutines remain, or somebody waits on it",
    "EPERM": "not permitted here",
    "EALREADY": "already initialised",
    "EPIPE": "the channel or connection is closed",
    "ETIMEDOUT": "the timeout passed",
    "ECANCELED": "the fd was closed with gr_close meanwhile",
    "EBADF": "not an open file descriptor",
    "ECHILD": "called in a child process after fork()",
    "EINTR": "interrupted",
    "ECONNREFUSED": "nobody listens at that address",
    "ECONNRESET": "the peer reset the connection",
    "EMFILE": "the process has no free file descriptor",
}


# ---------------------------------------------------------------- parsing

class Item:
    """One documented thing in the header."""

    def __init__(self, kind, name, decl, doc):
        self.kind = kind        # "function", "macro", "struct", "typedef", "opaque"
        self.name = name
        self.decl = decl        # the declaration, as C
        # The doc comment's text ("" when there is none), without its `# Safety`
        # section, which is kept apart: what the caller guarantees ("" when none).
        self.doc, self.safety = split_safety(doc)
        self.fields = []        # structs: (declaration, doc)
        self.also = []          # macros documented together with this one


def split_safety(doc):
    """(text, safety): a doc comment without its `# Safety` section, and that section's
    text (it runs to the end of the comment, as in src/ffi)."""
    m = re.search(r"(?m)^# Safety\s*$", doc)
    if not m:
        return doc, ""
    return doc[:m.start()].rstrip(), doc[m.end():].strip()


def comment_text(lines):
    """The text of a /* ... */ comment, its markers and the leading space removed."""
    text = "\n".join(lines).strip()
    assert text.startswith("/*") and text.endswith("*/"), text
    body = text[2:-2]
    out = []
    for line in body.split("\n"):
        s = line.rstrip()
        if s.startswith(" * "):
            s = s[3:]
        elif s.strip() == "*":
            s = ""
        elif s.startswith(" "):
            s = s[1:]
        out.append(s)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def parse_header(text):
    """Returns (intro, items) for the header's text."""
    lines = text.split("\n")
    i = 0
    # The file's first comment is the introduction.
    while i < len(lines) and not lines[i].startswith("/*"):
        i += 1
    start = i
    while i < len(lines) and "*/" not in lines[i]:
        i += 1
    intro = comment_text(lines[start:i + 1])
    i += 1

    items = []
    pending = None          # the doc comment waiting for its declaration
    last_macro = None       # a #define right above (for grouped macros)
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("/*"):
            start = i
            while "*/" not in lines[i]:
                i += 1
            text_ = comment_text(lines[start:i + 1])
            i += 1
            if text_.startswith("Generated by cbindgen"):
                continue
            pending = text_
            last_macro = None
            continue
        if s.startswith("#define"):
            decl = [line]
            while decl[-1].rstrip().endswith("\\"):
                i += 1
                decl.append(lines[i])
            i += 1
            m = re.match(r"#define\s+(\w+)", s)
            name = m.group(1)
            if name == "GOROUTINE_H":
                continue
            decl_text = "\n".join(decl)
            if pending is None and last_macro is not None:
                last_macro.also.append((name, decl_text))
            else:
                last_macro = Item("macro", name, decl_text, pending or "")
                items.append(last_macro)
            pending = None
            continue
        last_macro = None
        if not s or s.startswith("#") or s.startswith('extern "C"') or (s.startswith("}") and "extern" in s):
            if s:
                pending = None
            i += 1
            continue
        # A declaration: up to the ';' that ends it (struct bodies included).
        start = i
        depth = 0
        decl = []
        while True:
            cur = lines[i]
            depth += cur.count("{") - cur.count("}")
            decl.append(cur)
            i += 1
            if depth == 0 and cur.rstrip().endswith(";"):
                break
        items.append(declaration(decl, pending or ""))
        pending = None
    return intro, items


def declaration(decl_lines, doc):
    first = decl_lines[0].strip()
    if "{" in first:  # typedef struct gr_x { ... } gr_x;  or  struct gr_x { ... };
        name = re.match(r"(?:typedef\s+)?struct\s+(\w+)", first).group(1)
        kind = "struct"
        item = Item(kind, name, "", doc)
        body = decl_lines[1:-1]
        fdoc = None
        j = 0
        fields_c = []
        while j < len(body):
            s = body[j].strip()
            if s.startswith("/*"):
                start = j
                while "*/" not in body[j]:
                    j += 1
                fdoc = comment_text(body[start:j + 1])
                j += 1
                continue
            if s:
                item.fields.append((s, fdoc or ""))
                fields_c.append("  " + s)
                fdoc = None
            j += 1
        closing = decl_lines[-1].strip()
        opener = "typedef struct %s {" % name if first.startswith("typedef") else "struct %s {" % name
        item.decl = "\n".join([opener] + fields_c + [closing])
        return item
    text = " ".join(l.strip() for l in decl_lines)
    text = re.sub(r"\s+", " ", text)
    if text.startswith("typedef struct") and "{" not in text:
        name = re.match(r"typedef struct (\w+)", text).group(1)
        return Item("opaque", name, text, doc)
    if text.startswith("typedef"):
        m = re.search(r"\(\*(\w+)\)", text) or re.search(r"(\w+);$", text)
        return Item("typedef", m.group(1), text, doc)
    m = re.search(r"(\w+)\(", text)
    return Item("function", m.group(1), text, doc)


# ---------------------------------------------------------------- analysis

def sentences(text):
    """Splits prose into sentences (not inside parentheses or backticks)."""
    flat = re.sub(r"\s*\n\s*", " ", text.strip())
    out, cur, depth, tick = [], "", 0, False
    k = 0
    while k < len(flat):
        c = flat[k]
        cur += c
        if c == "`":
            tick = not tick
        elif not tick and c == "(":
            depth += 1
        elif not tick and c == ")":
            depth = max(0, depth - 1)
        elif (c == "." and depth == 0 and not tick and k + 2 < len(flat)
              and flat[k + 1] == " " and (flat[k + 2].isupper() or flat[k + 2] in "`-")):
            out.append(cur.strip())
            cur = ""
        k += 1
    if cur.strip():
        out.append(cur.strip())
    return out


def paragraphs(text):
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


CODE_RE = re.compile(r"-(E[A-Z]+)\b(\.\.\.)?")
# What may follow a code to say when it happens: "(...)" or "when/for/if ... ".
WHY_PAREN_RE = re.compile(r"\s*\(((?:[^()]|\([^()]*\))*)\)")
WHY_CLAUSE_RE = re.compile(r"\s+((?:when|while|for|if|after|on|unless)\b[^,;]*?)(?=[,;]|\.(?:\s|$)|$)")

# Sentences (or parts of them) that only say whether a call parks and who may call
# it; the reference states these under "Parking and threads".
CONTEXT_PHRASES = [
    r"may park", r"never parks", r"plain threads (?:block|sleep)(?: in poll\(2\))?",
    r"plain threads?(?: only|: yes)?", r"gil held", r"(?:it is )?released while [\w ]+",
    r"releases it while [\w ]+",
]


# A first sentence that names the result ("The calling goroutine's id, ...").
NOUN_PHRASE_RE = re.compile(r"(The|A|An|Number|Capacity|1)\b")


def is_pure_context(s):
    rest = s
    for ph in CONTEXT_PHRASES:
        rest = re.sub(ph, "", rest, flags=re.I)
    return not re.search(r"[A-Za-z]", rest)


def is_return_sentence(s):
    return bool(re.match(r"(returns|also|never null|null when|null with|0 for null)\b", s, re.I))


def is_context_sentence(s):
    return bool(re.search(r"\bpark|plain thread|\bGIL\b", s, re.I))


def errors_of(doc):
    """[(code, explanation)] in the order the comment names them, each code once."""
    flat = re.sub(r"\s*\n\s*", " ", doc)
    seen = {}
    order = []
    for m in CODE_RE.finditer(flat):
        code = m.group(1)
        after = flat[m.end():]
        w = WHY_PAREN_RE.match(after)
        if w:
            why = w.group(1).strip()
        else:
            w = WHY_CLAUSE_RE.match(after)
            why = w.group(1).strip() if w else ""
        if code not in seen:
            seen[code] = []
            order.append(code)
        if why and why not in seen[code]:
            seen[code].append(why)
    return [(c, "; ".join(seen[c])) for c in order]


def return_type(fn):
    return fn.decl[: fn.decl.index(fn.name + "(")].strip()


PARKS_YES = [r"\bmay park\b", r"\bparks? (?:the|that|this) goroutine\b", r"\bparking\b",
             r"\breleased while\b", r"\breleases it while\b"]


def parks(doc):
    """'yes', 'no' or None (the comment does not say)."""
    flat = re.sub(r"\s+", " ", doc)
    if re.search(r"\bnever parks\b", flat, re.I):
        return "no"
    if any(re.search(p, flat, re.I) for p in PARKS_YES):
        return "yes"
    return None


# ---------------------------------------------------------------- examples

def parse_examples(text):
    """{name: markdown} from the `## name` sections of docs/api_examples.md."""
    out = {}
    name = None
    buf = []
    for line in text.split("\n"):
        m = re.match(r"^## (\S+)\s*$", line)
        if m:
            if name:
                out[name] = "\n".join(buf).strip()
            name = m.group(1)
            buf = []
        elif name:
            buf.append(line)
    if name:
        out[name] = "\n".join(buf).strip()
    return out


def code_blocks(md):
    """[(language, code)] of the fenced blocks in a piece of markdown."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", md, re.S)]


C_PRELUDE = """#define _GNU_SOURCE
#include <goroutine.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#line 1 "EXAMPLE"
"""


def check_example_code(name, md, problems):
    blocks = code_blocks(md)
    if not blocks:
        problems.append("docs/api_examples.md: the example of %s has no fenced code block" % name)
    for lang, code in blocks:
        if lang == "c":
            cc = shutil.which("gcc") or shutil.which("cc")
            if not cc:
                print("gen_api.py: no C compiler: C examples not compiled", file=sys.stderr)
                continue
            src = C_PRELUDE.replace("EXAMPLE", "example of " + name) + code
            res = subprocess.run(
                [cc, "-std=gnu11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                 "-Wno-unused-function", "-Wno-unused-variable", "-Wno-unused-parameter",
                 "-I", os.path.join(ROOT, "include"), "-x", "c", "-"],
                input=src, capture_output=True, text=True)
            if res.returncode != 0:
                problems.append("the C example of %s does not compile:\n%s" % (name, res.stderr.strip()))
        elif lang == "python":
            try:
                compile(code, "example of " + name, "exec")
            except SyntaxError as e:
                problems.append("the Python example of %s: %s" % (name, e))
        elif lang not in ("sh", "text", ""):
            problems.append("the example of %s has a ```%s block (c, python, sh or text)" % (name, lang))


# ---------------------------------------------------------------- rendering

def md_escape_cell(s):
    return s.replace("|", "\\|").replace("\n", " ")


def render_doc(doc):
    """A doc comment as markdown paragraphs."""
    return "\n\n".join(re.sub(r"\s*\n\s*", " ", p.strip()) for p in paragraphs(doc))


def render_function(fn, example):
    out = ["### %s" % fn.name, "", "```c", "#include <goroutine.h>", "", fn.decl, "```", ""]
    doc = fn.doc
    sents = sentences(doc)
    rtype = return_type(fn)
    # Description: the comment, paragraph by paragraph, without the sentences that
    # only state return values or parking (they follow under their own headings).
    desc_pars = []
    for p in paragraphs(doc):
        keep = [s for s in sentences(p) if not is_return_sentence(s) and not is_pure_context(s)]
        if keep:
            desc_pars.append(" ".join(keep))
    out += ["**Description.** " + (desc_pars[0] if desc_pars else ""), ""]
    for p in desc_pars[1:]:
        out += [p, ""]
    rets = [s for s in sents if is_return_sentence(s)]
    if rtype == "void":
        rv = "None (`void`)."
    elif rets:
        rv = " ".join(rets)
        if NOUN_PHRASE_RE.match(sents[0]) and sents[0] not in rets:
            rv = sents[0] + " " + rv
    else:
        rv = sents[0] if sents else ""
    out += ["**Return value** (`%s`). %s" % (rtype, rv), ""]
    errs = errors_of(doc)
    if errs:
        out += ["**Errors.**", ""]
        for code, why in errs:
            text = why or ERRNO_MEANING.get(code, "")
            out.append("- `-%s`%s" % (code, (": " + text) if text else ""))
        out.append("")
    elif rtype != "void":
        out += ["**Errors.** None reported through the return value.", ""]
    p = parks(doc)
    if p == "no":
        park_line = "Never parks."
    elif p == "yes":
        park_line = "May park: in a goroutine the call parks it while other goroutines run."
    else:
        park_line = "The header does not say whether it parks."
    flat = re.sub(r"\s+", " ", doc)
    if re.search(r"plain threads only", flat, re.I):
        thread_line = "Plain threads only."
    elif re.search(r"plain threads block in poll", flat, re.I):
        thread_line = "On a plain thread it blocks the thread in poll(2) instead."
    elif re.search(r"plain threads sleep", flat, re.I):
        thread_line = "On a plain thread it puts the thread to sleep instead."
    elif re.search(r"plain threads block", flat, re.I):
        thread_line = "On a plain thread it blocks the thread instead."
    elif re.search(r"plain threads: yes", flat, re.I):
        thread_line = "Plain threads may call it."
    else:
        told = [s for s in sents if re.search(r"plain thread|\bGIL\b", s, re.I)]
        thread_line = " ".join(told) if told else (
            "A plain thread may call it too (the header's general rule: where a goroutine "
            "would park, a plain thread blocks).")
    out += ["**Parking and threads.** %s %s" % (park_line, thread_line), ""]
    if fn.safety:
        out += ["**The caller guarantees.** " + render_doc(fn.safety), ""]
    out += ["**Example.**", "", example.strip(), ""]
    return out


def render_type(item):
    out = ["### %s" % (("struct " + item.name) if item.kind == "struct" and not item.decl.startswith("typedef")
                       else item.name), ""]
    out += ["```c", item.decl, "```", ""]
    if item.doc:
        out += [render_doc(item.doc), ""]
    if item.fields:
        out += ["| field | meaning |", "|---|---|"]
        for decl, doc in item.fields:
            out.append("| `%s` | %s |" % (md_escape_cell(decl.rstrip(";")), md_escape_cell(render_doc(doc)) or ""))
        out.append("")
    return out


def render_macro(item):
    names = [item.name] + [n for n, _ in item.also]
    out = ["### %s" % ", ".join(names), "", "```c", item.decl]
    for _, d in item.also:
        out.append(d)
    out += ["```", ""]
    if item.doc:
        out += [render_doc(item.doc), ""]
    return out


def anchor(title):
    a = title.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def generate(header_text, examples):
    intro, items = parse_header(header_text)
    functions = [it for it in items if it.kind == "function"]
    types = [it for it in items if it.kind in ("struct", "typedef", "opaque")]
    macros = [it for it in items if it.kind == "macro"]

    grouped = [(title, []) for title, _ in SECTIONS] + [("Other", [])]
    for fn in functions:
        for (title, rule), (_, members) in zip(SECTIONS + [("Other", lambda n: True)], grouped):
            if rule(fn.name):
                members.append(fn)
                break
    grouped = [(t, m) for t, m in grouped if m]

    out = [
        "# libgoroutine C API reference",
        "",
        "<!-- Generated by docs/gen_api.py from include/goroutine.h and docs/api_examples.md:",
        "     do not edit. Change the doc comments in src/ffi/*.rs (then `make header`) or the",
        "     examples, then run `python3 docs/gen_api.py`. tests/docs.rs checks it. -->",
        "",
        "Every declaration of `#include <goroutine.h>` (link with `-lgoroutine`, or use "
        "`pkg-config --cflags --libs goroutine`), one section each. The "
        "[guide](guide.md) explains how the pieces fit together. From the header:",
        "",
    ]
    out += ["> " + l if l.strip() else ">" for l in render_doc(intro).split("\n")]
    out += [
        "",
        "Each function's section gives its synopsis, what it does, what it returns and every "
        "error code its documentation names (negative errno values: `-EINVAL` is "
        "`-22`), whether it may park the calling goroutine, and whether a plain thread (one "
        "the runtime did not start) may call it. In every function, a call in a child "
        "process after `fork()` fails at once with `-ECHILD` (or NULL, or 0): see the guide.",
        "",
        "## Contents",
        "",
    ]
    for title, members in grouped:
        out.append("- [%s](#%s): %s" % (title, anchor(title),
                                        ", ".join("[%s](#%s)" % (f.name, anchor(f.name)) for f in members)))
    out.append("- [Types](#types): " + ", ".join(
        "[%s](#%s)" % (t.name, anchor(("struct " + t.name) if t.kind == "struct" and not t.decl.startswith("typedef")
                                        else t.name)) for t in types))
    out.append("- [Constants and macros](#constants-and-macros)")
    out.append("")

    for title, members in grouped:
        out += ["## " + title, ""]
        if title in SECTION_NOTES:
            out += [SECTION_NOTES[title], ""]
        for fn in members:
            out += render_function(fn, examples.get(fn.name, "*(no example yet)*"))
    out += ["## Types", ""]
    for t in types:
        out += render_type(t)
    out += ["## Constants and macros", ""]
    for m in macros:
        out += render_macro(m)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n", functions, items


# ---------------------------------------------------------------- lint

def lint(items):
    problems = []
    for it in items:
        names = [it.name] + [n for n, _ in it.also]
        for n in names:
            if not (n.startswith("gr_") or n.startswith("GR_")):
                problems.append("%s: the header defines a name outside the gr_/GR_ namespace "
                                "(it would clash with a C program's own names)" % n)
        if not it.doc.strip():
            problems.append("%s: no doc comment" % it.name)
            continue
        if it.kind != "function":
            continue
        sents = sentences(it.doc)
        rtype = return_type(it)
        says_return = (any(is_return_sentence(s) or re.search(r"\breturns?\b", s, re.I) for s in sents)
                       or bool(sents and NOUN_PHRASE_RE.match(sents[0])))
        if rtype != "void" and not says_return and len(sents) > 2:
            problems.append("%s: the doc comment does not say what it returns" % it.name)
        if parks(it.doc) is None:
            problems.append("%s: the doc comment does not say whether it may park "
                            "(\"May park; plain threads block.\" or \"Never parks.\")" % it.name)
    return problems


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="check docs/api.md and the examples; write nothing")
    ap.add_argument("--lint", action="store_true", help="check the header's doc comments")
    args = ap.parse_args()

    with open(HEADER) as f:
        header_text = f.read()
    with open(EXAMPLES) as f:
        examples = parse_examples(f.read())
    text, functions, items = generate(header_text, examples)

    if args.lint:
        problems = lint(items)
        for p in problems:
            print("include/goroutine.h: " + p)
        if problems:
            print("%d problem(s): fix the doc comments in src/ffi/*.rs, then `make header`" % len(problems))
            return 1
        print("the header's doc comments are complete (%d functions)" % len(functions))
        return 0

    if not args.check:
        with open(OUTPUT, "w") as f:
            f.write(text)
        missing = [fn.name for fn in functions if fn.name not in examples]
        print("wrote docs/api.md: %d functions, %d with examples" % (len(functions), len(functions) - len(missing)))
        for n in missing:
            print("  no example for %s: add `## %s` to docs/api_examples.md" % (n, n))
        return 0

    problems = []
    names = {fn.name for fn in functions}
    for fn in functions:
        if fn.name not in examples:
            problems.append("%s has no example: add a `## %s` section with a code block to "
                            "docs/api_examples.md" % (fn.name, fn.name))
    for n in examples:
        if n not in names:
            problems.append("docs/api_examples.md has an example for %s, which the header does not "
                            "declare" % n)
    for n, md in sorted(examples.items()):
        check_example_code(n, md, problems)
    try:
        with open(OUTPUT) as f:
            current = f.read()
    except FileNotFoundError:
        current = ""
    if current != text:
        diff = list(difflib.unified_diff(current.split("\n"), text.split("\n"), "docs/api.md",
                                         "docs/api.md as generated", lineterm="", n=1))
        shown = "\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else "")
        problems.append("docs/api.md is not what docs/gen_api.py generates from the current header "
                        "and examples: run `python3 docs/gen_api.py`\n" + shown)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("docs/api.md is current: %d functions, each with an example" % len(functions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
