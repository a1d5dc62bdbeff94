#!/usr/bin/env python3
"""Source files over a line limit and functions over a length limit.

    scripts/code-sizes.py [--files N] [--functions N] [DIR...]

Counts every line of a file; a function is a Swift `func`/`init`/`deinit`/
`subscript`/computed property body, or a C function definition, from its
first line to its closing brace (braces inside strings and comments are
skipped). Prints the offenders, longest first, and a total; exit status 0.
"""
import os, re, sys

def strip(line, state):
    """The line without string literals and comments; state carries /* */."""
    out, i, n = [], 0, len(line)
    while i < n:
        if state['block']:
            end = line.find('*/', i)
            if end < 0: return ''.join(out)
            state['block'] = False; i = end + 2; continue
        c = line[i]
        if line.startswith('//', i): break
        if line.startswith('/*', i): state['block'] = True; i += 2; continue
        if line.startswith('"""', i):
            state['multiline'] = not state['multiline']; i += 3; continue
        if state['multiline']: i += 1; continue
        if c == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == '\\' else 1
            i = j + 1; continue
        if c == "'" and i + 2 < n and line[i+2] == "'": i += 3; continue
        out.append(c); i += 1
    return ''.join(out)

SWIFT = re.compile(r'^\s*(?:@[\w()":. ]+\s+)*(?:(?:public|private|fileprivate|internal|package|open|static|class|final|override|mutating|nonmutating|nonisolated|convenience|required|@inlinable|@usableFromInline|consuming|borrowing)\s+)*(func\s+[^\s(<]+|init[?!]?|deinit|subscript)\b')
C = re.compile(r'^(?:static\s+|inline\s+|extern\s+)*[\w\s\*]+?\b(\w+)\s*\([^;]*$')

def functions(path):
    lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
    is_c = path.endswith(('.c', '.h'))
    state = {'block': False, 'multiline': False}
    clean = [strip(l, state) for l in lines]
    result = []
    i = 0
    while i < len(lines):
        m = (C.match(clean[i]) if is_c and not clean[i].startswith((' ', '\t', '#', '}')) else SWIFT.match(clean[i]))
        if m and (is_c or '{' in ''.join(clean[i:i+12])):
            name = m.group(1).replace('func ', '')
            depth, started, j = 0, False, i
            while j < len(lines):
                for ch in clean[j]:
                    if ch == '{': depth += 1; started = True
                    elif ch == '}': depth -= 1
                if started and depth <= 0: break
                if not started and (clean[j].rstrip().endswith(';') or (not is_c and j > i and SWIFT.match(clean[j]))): break
                j += 1
            if started:
                result.append((j - i + 1, name, i + 1))
                if is_c: i = j
        i += 1
    return len(lines), result

def main():
    args = sys.argv[1:]
    file_limit, function_limit, dirs = 500, 80, []
    while args:
        a = args.pop(0)
        if a == '--files': file_limit = int(args.pop(0))
        elif a == '--functions': function_limit = int(args.pop(0))
        else: dirs.append(a)
    big_files, big_functions = [], []
    for root in dirs or ['Sources']:
        for base, _, names in os.walk(root, followlinks=True):
            for name in sorted(names):
                if not name.endswith(('.swift', '.c', '.h')): continue
                path = os.path.join(base, name)
                count, funcs = functions(path)
                if count > file_limit: big_files.append((count, path))
                big_functions += [(n, f"{path}:{line} {fn}") for n, fn, line in funcs if n > function_limit]
    print(f"files over {file_limit} lines: {len(big_files)}")
    for n, p in sorted(big_files, reverse=True): print(f"  {n:5}  {p}")
    print(f"functions over {function_limit} lines: {len(big_functions)}")
    for n, p in sorted(big_functions, reverse=True): print(f"  {n:5}  {p}")

main()
