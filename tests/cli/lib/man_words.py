#!/usr/bin/env python3
"""man_words.py - the words an mdoc page marks as commands, options and
directives.

Usage: man_words.py PAGE

Prints, one per line, every argument of the Cm and Ic macros (command
modifiers, directives: "rule", "tier-rpm") and of Fl, with its dash ("Fl v"
is -v, "Fl -json" is --json). A word only mentioned in running text does not
count: a page documents a directive where it marks it.
"""
import shlex
import sys

MACROS = set("""Ad An Ap Ar At Bc Bd Bf Bk Bl Bo Bq Brc Bro Brq Bsx Bt Bx Cd Cm D1 Db Dc
Dd Dl Do Dq Dt Dv Dx Ec Ed Ef Ek El Em En Eo Er Es Ev Ex Fa Fc Fd Fl Fn Fo Fr Ft Fx Hf
Ic In It Lb Li Lk Lp Ms Mt Nd Nm No Ns Nx Oc Oo Op Os Ot Ox Pa Pc Pf Po Pp Pq Qc Ql Qo
Qq Re Rs Rv Sc Sh Sm So Sq Ss St Sx Sy Ta Tn Ud Ux Va Vt Xc Xo Xr""".split())
MARKING = {"Cm", "Ic", "Fl"}


def words(text):
    out = set()
    for line in text.splitlines():
        if not line.startswith(".") or line.startswith(".\\\""):
            continue
        try:
            toks = shlex.split(line[1:], posix=True)
        except ValueError:
            toks = line[1:].split()
        cur = None
        for t in toks:
            if t in MACROS:
                cur = t
                if t == "Fl":
                    # "Fl" with no argument is a lone dash; nothing to mark
                    pass
                continue
            t = t.replace("\\&", "").replace("\\-", "-")
            if cur in ("Cm", "Ic") and t not in ("|", ",", ".", ";", ":", "(", ")"):
                out.add(t)
            elif cur == "Fl" and t not in ("|", ",", ".", ";", ":", "(", ")"):
                out.add("-" + t)
    return out


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        for w in sorted(words(f.read())):
            print(w)
