#!/usr/bin/env python3
"""scripts/check-sizes finds what it is meant to: a file over the line limit, a function over the
function limit (member functions, functions with lambdas, raw strings holding braces), and
nothing in namespaces, classes and initialisers, however long."""
import os
import subprocess
import sys
import tempfile

root = sys.argv[1]
checker = os.path.join(root, "scripts", "check-sizes")


def run(files, *args):
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        r = subprocess.run([checker, *args, d], capture_output=True, text=True)
        return r.returncode, r.stdout


def body(n):
    return "".join(f"  int v{i} = {i};\n" for i in range(n))


failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


code, out = run({"ok.cc": "namespace a {\nint F() {\n" + body(70) + "  return 0;\n}\n}  // namespace a\n"})
expect(code == 0, f"a 73-line function is within 80: {out}")

code, out = run({"long.cc": "namespace a {\nclass C {\n public:\n  int M() const {\n" + body(85) + "    return 0;\n  }\n};\n}\n"})
expect(code == 1 and "M: 88 lines" in out, f"a long member function is found: {out}")

code, out = run({"lambda.cc": "void G() {\n  auto f = [] {\n" + body(40) + "  };\n  auto g = [] {\n" + body(40) + "  };\n}\n"})
expect(code == 1 and "G:" in out, f"lambdas count towards their function: {out}")

raw = 'const char* kSql = R"sql(\n' + "{\n" * 100 + ')sql";\nint H() { return 1; }\n'
code, out = run({"raw.cc": raw})
expect(code == 0, f"braces in a raw string are not code: {out}")

init = "const int kTable[] = {\n" + "".join(f"  {i},\n" for i in range(200)) + "};\n"
code, out = run({"init.cc": init})
expect(code == 0, f"an initialiser is not a function: {out}")

code, out = run({"big.h": "// x\n" * 520})
expect(code == 1 and "520 lines" in out, f"a file over 500 lines is found: {out}")

code, out = run({"f.cc": "int F() {\n" + body(30) + "  return 0;\n}\n"}, "--function-lines", "20")
expect(code == 1, f"the limit is a setting: {out}")

for f in failures:
    print("FAILED:", f)
print(f"check-sizes test: {7 - len(failures)} of 7 cases pass")
sys.exit(1 if failures else 0)
