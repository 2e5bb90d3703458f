"""Hostile inputs shared by the tests of issue 15's bad-input part."""

from __future__ import annotations

__all__ = ["ALIAS_BOMB"]

# the "billion laughs": 355 bytes of YAML (issue 15 used 376) whose aliases expand to 9^9 (387 million) strings
ALIAS_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
modulesContent: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
