#!/usr/bin/env python3
"""code_names.py - the words a C parser accepts, read from its source.

Usage: code_names.py FILE.c...

Prints one name per line, sorted: every word the code compares its input
with, in whichever of the forms sluice's parsers use:

  - a literal in a strcmp()/strcasecmp() call whose other side is not a
    struct field (the input is argv[i], w[0], word, arg...; a comparison
    with de->d_name or a->mode is about data, not input):
        !strcmp(w[0], "interface"), strcmp(word, t < 3 ? x[t].word : "flows-full")
  - the entries of a table that a strcmp() call indexes, however it is
    laid out: a struct table's first string ({ "listen", D_FN, ... }) or
    every string of a string array ({ "port", "limit", ... }):
        strcmp(w[0], directives[i].name), strcmp(word, keywords[k])
  - every table of the one directive reader's type, struct directive
    (user/lib/directive.h: sluiced.conf and sluice-l7's file), whose names
    directive.c compares through a pointer:
        static const struct directive directives[] = { { "interface", ... } }
  - getopt_long's option table (as --NAME) and its short options (as -X).
  - the sluice CLI's option tables, struct cli_opt (user/cli/opts.h), whose
    entries name their fields: .name = "mode" as --mode, .short_name = 'j'
    as -j; and the words of its enum options, struct cli_choice tables
    ({ "native", MODE_NATIVE }), which its parser compares through a pointer.

So an if-chain turned into a table (or a table into an if-chain) yields the
same names, and a directive added to either is found. Words that are not
keyword-shaped (letters, digits, '-', '_'; options with their dashes) are
left out: "\\", "unix:".
"""
import re
import sys

KEYWORD = re.compile(r'^-{0,2}[A-Za-z][A-Za-z0-9_-]*$')
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def strip_comments(src):
    """Comments out, strings kept (a "//" inside a string stays)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == '\\' else 1
            out.append(src[i:j + 1])
            i = j + 1
        elif src.startswith('/*', i):
            j = src.find('*/', i + 2)
            i = n if j < 0 else j + 2
            out.append(' ')
        elif src.startswith('//', i):
            j = src.find('\n', i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def call_args(src, open_paren):
    """The top-level arguments of the call whose '(' is at open_paren."""
    depth, i, start, args = 0, open_paren, open_paren + 1, []
    while i < len(src):
        c = src[i]
        if c == '"':
            m = STRING.match(src, i)
            i = m.end() if m else i + 1
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
            if depth == 0:
                args.append(src[start:i])
                return args
        elif c == ',' and depth == 1:
            args.append(src[start:i])
            start = i + 1
        i += 1
    return args


# Tables of these element types are keyword tables wherever they are: their
# reader compares the names elsewhere, through a pointer.
READER_TYPES = {'directive', 'cli_choice'}
# Option tables: their entries' .name (as --NAME) and .short_name (as -X).
OPTION_TYPES = {'cli_opt'}


def option_names(body):
    out = ['--' + n for n in re.findall(r'\.name\s*=\s*"((?:[^"\\]|\\.)*)"', body)]
    out += ['-' + c for c in re.findall(r"\.short_name\s*=\s*'(.)'", body)]
    return out


def tables(src, types=None):
    """name -> the body of every array initialised with braces (and, in
    types, name -> its element's struct tag, for struct arrays)."""
    found = {}
    for m in re.finditer(r'(\w+)\s*\[[^\]]*\]\s*=\s*\{', src):
        decl = re.search(r'struct\s+(\w+)\s+(?:const\s+)?$', src[max(0, m.start() - 80):m.start()])
        if types is not None and decl:
            types[m.group(1)] = decl.group(1)
        i, depth = m.end() - 1, 0
        while i < len(src):
            if src[i] == '"':
                s = STRING.match(src, i)
                i = s.end() if s else i + 1
                continue
            if src[i] == '{':
                depth += 1
            elif src[i] == '}':
                depth -= 1
                if depth == 0:
                    break
            i += 1
        found[m.group(1)] = src[m.end():i]
    return found


def table_names(body):
    """A struct table's first strings, or a string array's strings."""
    if body.lstrip().startswith('{'):
        return [m.group(1) for m in re.finditer(r'\{\s*"((?:[^"\\]|\\.)*)"', body)]
    return STRING.findall(body)


def names(src):
    src = strip_comments(src)
    types = {}
    tabs = tables(src, types)
    out = set()
    for t, tag in types.items():
        if tag in READER_TYPES:
            out.update(table_names(tabs[t]))
        if tag in OPTION_TYPES:
            out.update(option_names(tabs[t]))
    for m in re.finditer(r'\bstr(?:case)?cmp\s*\(', src):
        args = call_args(src, m.end() - 1)
        if len(args) != 2:
            continue
        for k, arg in enumerate(args):
            other = args[1 - k]
            lits = STRING.findall(arg)
            if lits and not re.search(r'->|\.\s*[A-Za-z_]', other):
                out.update(lits)
        for arg in args:
            for t in re.findall(r'\b(\w+)\s*\[', arg):
                if t in tabs:
                    out.update(table_names(tabs[t]))
    for m in re.finditer(r'\bgetopt_long\s*\(', src):
        args = call_args(src, m.end() - 1)
        if len(args) < 4:
            continue
        for short in STRING.findall(args[2]):
            out.update('-' + c for c in short if c.isalnum())
        t = args[3].strip().lstrip('&')
        if t in tabs:
            out.update('--' + n for n in table_names(tabs[t]) if n)
    return sorted(n for n in out if KEYWORD.match(n))


def main(paths):
    found = set()
    for p in paths:
        with open(p, encoding='utf-8') as f:
            found.update(names(f.read()))
    for n in sorted(found):
        print(n)


if __name__ == '__main__':
    main(sys.argv[1:])
