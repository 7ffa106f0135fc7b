"""A subset of Go's text/template, as the docker CLI's ``--format`` uses it.

Supported: text with ``{{ }}`` actions and ``{{- -}}`` trimming, comments,
``.``, ``$``, field chains (``.A.B``, ``$x.A``, ``(pipeline).A``), string,
number and boolean literals, pipelines with ``|``, variables (``$x :=``),
``if``/``else if``/``else``, ``range`` (with ``$i, $e :=``), ``with`` and
``end``; Go's builtins (``and or not len index eq ne lt le gt ge print
printf println``) and docker's (``json split join title lower upper pad
truncate``).

Values are the JSON the daemon sends (dicts, lists, scalars) or objects that
implement :class:`FieldSource`, the analogue of docker's formatter contexts:
their fields are computed and unknown names are errors, as on a Go struct.
Printing follows Go's ``fmt`` ``%v`` (``[a b]``, ``map[k:v]``, ``<nil>``).
"""

from __future__ import annotations

import json as _json
import re
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable


class TemplateError(Exception):
    """A parse or execution error, worded like Go's ``template: ...`` errors."""


@runtime_checkable
class FieldSource(Protocol):
    """A value whose template fields are computed, like a Go struct with methods."""

    type_name: str

    def field(self, name: str) -> Any:
        """Return the field's value; raise KeyError when there is no such field."""

    def to_json(self) -> Any:
        """What ``{{json .}}`` marshals."""


@runtime_checkable
class MethodSource(Protocol):
    """A row with methods that take arguments (docker's ``ContainerContext.Label(name)``)."""

    METHODS: Mapping[str, int]  # method name -> number of arguments

    def call(self, name: str, args: list[Any]) -> Any:
        """Call the method ``name`` with the template's arguments."""


# ---------------------------------------------------------------- lexing

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\]|\\.)')
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()|,])
""", re.VERBOSE)

_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int  # offset in the whole template, for error positions


def _lex_action(src: str, start: int, end: int) -> list[_Tok]:
    toks: list[_Tok] = []
    i = start
    while i < end:
        m = _TOKEN.match(src, i, end)
        if not m:
            raise TemplateError(f"template: :{_line(src, i)}: unexpected {src[i]!r} in command")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "field" and toks and toks[-1].kind == "punct" and toks[-1].text == ")" and i == toks[-1].pos + 1:
            kind = "chain"  # (pipeline).Field
        if kind == "field" and toks and toks[-1].kind == "var" and i == toks[-1].pos + len(toks[-1].text):
            toks[-1] = _Tok("var", toks[-1].text + text, toks[-1].pos)
            i = m.end()
            continue
        if kind != "ws":
            toks.append(_Tok(kind, text, i))
        i = m.end()
    return toks


def _line(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def _col(src: str, pos: int) -> int:
    return pos - (src.rfind("\n", 0, pos) + 1)


# ---------------------------------------------------------------- nodes

@dataclass
class _Field:
    names: list[str]
    pos: int
    text: str


@dataclass
class _Var:
    name: str
    names: list[str]
    pos: int
    text: str


@dataclass
class _Dot:
    pos: int


@dataclass
class _Lit:
    value: Any
    pos: int


@dataclass
class _Ident:
    name: str
    pos: int


@dataclass
class _Sub:
    pipe: "_Pipe"
    names: list[str]
    pos: int
    text: str


_Operand = _Field | _Var | _Dot | _Lit | _Ident | _Sub


@dataclass
class _Cmd:
    args: list[_Operand]
    pos: int


@dataclass
class _Pipe:
    decls: list[str]
    cmds: list[_Cmd]
    pos: int
    assign: bool = False


@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    pipe: _Pipe


@dataclass
class _Branch:
    kind: str  # if, range, with
    pipe: _Pipe
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)


# ---------------------------------------------------------------- parsing

class _Parser:
    def __init__(self, src: str, funcs: dict[str, Callable[..., Any]]) -> None:
        self.src = src
        self.funcs = funcs

    def parse(self) -> list[Any]:
        root: list[Any] = []
        # (where nodes go now, the open branch, whether {{else if}} opened it)
        stack: list[tuple[list[Any], _Branch | None, bool]] = [(root, None, False)]
        for item in self._items():
            target, branch, _ = stack[-1]
            if not isinstance(item, tuple):
                target.append(item)
                continue
            word, toks, pos = item
            if word in ("if", "range", "with"):
                node = _Branch(word, self._pipe(toks, pos, allow_decl=True))
                target.append(node)
                stack.append((node.body, node, False))
            elif word == "else":
                if branch is None or target is branch.orelse:
                    raise TemplateError(f"template: :{_line(self.src, pos)}: unexpected {{{{else}}}}")
                chained = stack[-1][2]
                stack[-1] = (branch.orelse, branch, chained)
                if toks and toks[0].kind == "ident" and toks[0].text in ("if", "with"):
                    # {{else if x}} is {{else}}{{if x}}, closed by the same {{end}}
                    inner = _Branch(toks[0].text, self._pipe(toks[1:], pos, allow_decl=True))
                    branch.orelse.append(inner)
                    stack.append((inner.body, inner, True))
            elif word == "end":
                if branch is None:
                    raise TemplateError(f"template: :{_line(self.src, pos)}: unexpected {{{{end}}}}")
                while stack[-1][2]:
                    stack.pop()
                stack.pop()
            else:
                raise TemplateError(f"template: :{_line(self.src, pos)}: {{{{{word}}}}} is not supported")
        if len(stack) > 1:
            raise TemplateError(f"template: :{_line(self.src, len(self.src))}: unexpected EOF")
        return root

    def _items(self) -> list[Any]:
        src = self.src
        out: list[Any] = []
        i = 0
        trim_next = False
        while True:
            j = src.find("{{", i)
            text = src[i:] if j < 0 else src[i:j]
            if j >= 0 and src[j + 2:j + 4] in ("- ", "-\t", "-\n"):
                text = text.rstrip(" \t\r\n")
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if text:
                out.append(_Text(text))
            if j < 0:
                return out
            start = j + 2
            if src.startswith("- ", start) or src.startswith("-\t", start) or src.startswith("-\n", start):
                start += 2
            close = self._find_close(start)
            end = close
            trim_next = False
            if close >= 2 and src[close - 1] == "-" and src[close - 2] in " \t\n":
                end = close - 2
                trim_next = True
            i = close + 2
            inner = src[start:end].strip()
            if inner.startswith("/*"):
                if not inner.endswith("*/"):
                    raise TemplateError(f"template: :{_line(src, start)}: unclosed comment")
                continue
            toks = _lex_action(src, start, end)
            if not toks:
                raise TemplateError(f"template: :{_line(src, start)}: missing value for command")
            if toks[0].kind == "ident" and toks[0].text in _KEYWORDS:
                out.append((toks[0].text, toks[1:], toks[0].pos))
            else:
                out.append(_Action(self._pipe(toks, start, allow_decl=True)))

    def _find_close(self, start: int) -> int:
        src = self.src
        i = start
        while i < len(src):
            c = src[i]
            if c in "\"`'":
                k = i + 1
                while k < len(src) and src[k] != c:
                    k += 2 if (src[k] == "\\" and c != "`") else 1
                i = k + 1
                continue
            if src.startswith("}}", i):
                return i
            if c == "}":
                raise TemplateError(f"template: :{_line(src, i)}: bad character U+007D '}}'")
            i += 1
        raise TemplateError(f"template: :{_line(src, start)}: unclosed action")

    def _pipe(self, toks: list[_Tok], pos: int, allow_decl: bool) -> _Pipe:
        decls: list[str] = []
        assign = False
        for k, t in enumerate(toks):
            if t.kind in ("decl", "assign"):
                names = toks[:k]
                if not allow_decl or not names or any(n.kind not in ("var", "punct") for n in names):
                    raise TemplateError(f"template: :{_line(self.src, t.pos)}: unexpected {t.text!r}")
                decls = [n.text for n in names if n.kind == "var"]
                assign = t.kind == "assign"
                toks = toks[k + 1:]
                break
        if not toks:
            raise TemplateError(f"template: :{_line(self.src, pos)}: missing value for command")
        cmds: list[_Cmd] = []
        cur: list[_Tok] = []
        depth = 0
        for t in toks:
            if t.kind == "punct" and t.text == "(":
                depth += 1
            elif t.kind == "punct" and t.text == ")":
                depth -= 1
            if t.kind == "punct" and t.text == "|" and depth == 0:
                cmds.append(self._cmd(cur, t.pos))
                cur = []
            else:
                cur.append(t)
        cmds.append(self._cmd(cur, toks[-1].pos))
        return _Pipe(decls, cmds, toks[0].pos, assign)

    def _cmd(self, toks: list[_Tok], pos: int) -> _Cmd:
        if not toks:
            raise TemplateError(f"template: :{_line(self.src, pos)}: missing value for command")
        args: list[_Operand] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "punct" and t.text == "(":
                depth, k = 1, i + 1
                while k < len(toks) and depth:
                    if toks[k].kind == "punct":
                        depth += {"(": 1, ")": -1}.get(toks[k].text, 0)
                    k += 1
                if depth:
                    raise TemplateError(f"template: :{_line(self.src, t.pos)}: unclosed left paren")
                sub = self._pipe(toks[i + 1:k - 1], t.pos, allow_decl=False)
                names: list[str] = []
                end = toks[k - 1].pos + 1
                if k < len(toks) and toks[k].kind == "chain":
                    names = toks[k].text[1:].split(".")
                    end = toks[k].pos + len(toks[k].text)
                    k += 1
                args.append(_Sub(sub, names, t.pos, self.src[t.pos:end]))
                i = k
                continue
            args.append(self._operand(t))
            i += 1
        first = args[0]
        if isinstance(first, _Ident) and first.name not in self.funcs and first.name not in ("nil", "true", "false"):
            raise TemplateError(f"template: :{_line(self.src, first.pos)}: function \"{first.name}\" not defined")
        for a in args[1:]:
            if isinstance(a, _Ident) and a.name not in self.funcs:
                raise TemplateError(f"template: :{_line(self.src, a.pos)}: function \"{a.name}\" not defined")
        return _Cmd(args, toks[0].pos)

    def _operand(self, t: _Tok) -> _Operand:
        if t.kind == "field":
            return _Field(t.text[1:].split("."), t.pos, t.text)
        if t.kind == "var":
            name, _, rest = t.text.partition(".")
            return _Var(name, rest.split(".") if rest else [], t.pos, t.text)
        if t.kind == "dot":
            return _Dot(t.pos)
        if t.kind == "str":
            return _Lit(_go_unquote(t.text), t.pos)
        if t.kind == "raw":
            return _Lit(t.text[1:-1], t.pos)
        if t.kind == "char":
            return _Lit(ord(_go_unquote('"' + t.text[1:-1] + '"')), t.pos)
        if t.kind == "num":
            text = t.text.replace("_", "")
            try:
                return _Lit(int(text, 0), t.pos)
            except ValueError:
                return _Lit(float(text), t.pos)
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return _Lit(t.text == "true", t.pos)
            if t.text == "nil":
                return _Lit(None, t.pos)
            return _Ident(t.text, t.pos)
        raise TemplateError(f"template: :{_line(self.src, t.pos)}: unexpected {t.text!r} in operand")


def _go_unquote(text: str) -> str:
    try:
        return _json.loads(text)
    except ValueError:
        return text[1:-1].encode().decode("unicode_escape")


# ---------------------------------------------------------------- printing

class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


class NilSlice(list):  # type: ignore[type-arg]
    """A JSON null that a Go struct holds as a nil slice: prints ``[]``, marshals ``null``."""


class NilMap(dict):  # type: ignore[type-arg]
    """A JSON null that a Go struct holds as a nil map: prints ``map[]``, marshals ``null``."""


def go_str(value: Any) -> str:
    """Go's ``fmt.Sprint`` of a value."""
    if value is None:
        return "<nil>"
    if value is NO_VALUE:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, FieldSource):
        return go_str(value.to_json())
    return str(value)


def go_float(f: float) -> str:
    """``%v`` of a float64: shortest digits, exponent form below 1e-4 or from 1e6 (strconv's 'g', -1)."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    d = Decimal(repr(abs(f))).normalize()
    _, digits, exp = d.as_tuple()
    e10 = len(digits) - 1 + int(exp)
    sign = "-" if f < 0 else ""
    if e10 < -4 or e10 >= 6:
        text = "".join(map(str, digits))
        body = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{sign}{body}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    return sign + format(d, "f")


def go_json(value: Any) -> str:
    """docker's ``json`` template function: Go's encoder, compact, with HTML escaping off
    (``SetEscapeHTML(false)``); a formatter row's own MarshalJSON is json.Marshal, which escapes."""
    escape_html = isinstance(value, FieldSource)
    value = _go_maps(value)
    text = _json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_maps(value: Any) -> Any:
    """Plain JSON objects are Go maps: json.Marshal writes their keys sorted.

    A FieldSource stands for a Go struct: its ``to_json`` already has the struct's field order.
    """
    if value is NO_VALUE:
        return None
    if isinstance(value, FieldSource):
        return value.to_json()
    if isinstance(value, (NilSlice, NilMap)):
        return None
    if isinstance(value, dict):
        return {k: _go_maps(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_go_maps(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, FieldSource):
        return value.to_json()
    raise TypeError(f"cannot marshal {type(value).__name__}")


# ---------------------------------------------------------------- functions

def truth(value: Any) -> bool:
    """Go template truth: zero values and empty collections are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, FieldSource):
        return True
    return bool(value)


def _title(s: str) -> str:
    return re.sub(r"(^|\s)(\S)", lambda m: m.group(1) + m.group(2).upper(), s)


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, "")
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        elif item is None:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"error calling index: can't index item of type {type(item).__name__}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, FieldSource):
        item = item.to_json()
    try:
        return len(item)
    except TypeError:
        raise TemplateError(f"error calling len: len of type {type(item).__name__}") from None


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def verb(m: re.Match[str]) -> str:
        spec, v = m.group(1), m.group(2)
        if v == "%":
            return "%"
        try:
            a = next(it)
        except StopIteration:
            return f"%!{v}(MISSING)"
        if v == "q":
            return _json.dumps(go_str(a), ensure_ascii=False)
        if v in "dxXo" and isinstance(a, int):
            return ("%" + spec + v) % a
        if v in "feEgG" and isinstance(a, (int, float)):
            return ("%" + spec + v) % a
        return ("%" + spec + "s") % go_str(a)

    return re.sub(r"%([-+# 0]*\d*(?:\.\d+)?)([a-zA-Z%])", verb, fmt)


def _cmp(name: str, op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def f(a: Any, b: Any) -> bool:
        try:
            return op(a, b)
        except TypeError:
            raise TemplateError(f"error calling {name}: incompatible types for comparison") from None
    return f


def _truncate(s: str, n: int) -> str:
    return s[:n] if len(s) > n else s


BASIC_FUNCS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "split": lambda s, sep: s.split(sep) if sep else list(s),
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "title": _title,
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "pad": lambda s, left, right: " " * left + go_str(s) + " " * right,
    "truncate": _truncate,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": _sprint,
    "printf": _printf,
    "len": _len,
    "index": _index,
    "not": lambda a: not truth(a),
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "lt": _cmp("lt", lambda a, b: a < b),
    "le": _cmp("le", lambda a, b: a <= b),
    "gt": _cmp("gt", lambda a, b: a > b),
    "ge": _cmp("ge", lambda a, b: a >= b),
}
# and/or are evaluated lazily by the executor: they stop at the first operand that decides.
_LOGIC = {"and", "or"}

# docker's header pass: these return their first argument untouched, so
# ``{{json .ID}}`` heads its column with ``IMAGE ID``.
HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    **BASIC_FUNCS,
    **{name: (lambda v, *_: v) for name in ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")},
}


# ---------------------------------------------------------------- execution

class _Exec:
    def __init__(self, src: str, funcs: dict[str, Callable[..., Any]], missing_key_error: bool,
                 typed_nils: Mapping[str, Callable[[], Any]]) -> None:
        self.src = src
        self.funcs = funcs
        self.missing_key_error = missing_key_error
        self.typed_nils = typed_nils
        self.out: list[str] = []

    def err(self, pos: int, node_text: str, msg: str) -> TemplateError:
        return TemplateError(f"template: :{_line(self.src, pos)}:{_col(self.src, pos)}: "
                             f"executing \"\" at <{node_text}>: {msg}")

    def run(self, nodes: list[Any], dot: Any, vars_: list[tuple[str, Any]]) -> None:
        mark = len(vars_)
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot, vars_)
                if not node.pipe.decls:
                    self.out.append(go_str(value))
            else:
                self.branch(node, dot, vars_)
        del vars_[mark:]

    def branch(self, node: _Branch, dot: Any, vars_: list[tuple[str, Any]]) -> None:
        mark = len(vars_)
        if node.kind == "range":
            value = self.pipe(node.pipe, dot, vars_, bind=False)
            del vars_[mark:]
            if isinstance(value, FieldSource):
                value = value.to_json()
            if isinstance(value, dict):
                pairs = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, (list, tuple)):
                pairs = list(enumerate(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                pairs = [(i, i) for i in range(value)]
            elif value is None or value is NO_VALUE:
                pairs = []
            else:
                raise self.err(node.pipe.pos, "range", f"range can't iterate over {go_str(value)}")
            if not pairs:
                self.run(node.orelse, dot, vars_)
                return
            for key, elem in pairs:
                decls = node.pipe.decls
                if len(decls) == 1:
                    vars_.append((decls[0], elem))
                elif len(decls) >= 2:
                    vars_.append((decls[0], key))
                    vars_.append((decls[1], elem))
                self.run(node.body, elem, vars_)
                del vars_[mark:]
            return
        value = self.pipe(node.pipe, dot, vars_)
        if truth(value):
            self.run(node.body, value if node.kind == "with" else dot, vars_)
        else:
            self.run(node.orelse, dot, vars_)
        del vars_[mark:]

    def pipe(self, pipe: _Pipe, dot: Any, vars_: list[tuple[str, Any]], bind: bool = True) -> Any:
        value: Any = _UNSET
        for cmd in pipe.cmds:
            value = self.cmd(cmd, dot, vars_, value)
        if bind and pipe.decls:
            if pipe.assign:
                for i in range(len(vars_) - 1, -1, -1):
                    if vars_[i][0] == pipe.decls[0]:
                        vars_[i] = (pipe.decls[0], value)
                        break
                else:
                    raise self.err(pipe.pos, pipe.decls[0], f"undefined variable: {pipe.decls[0]}")
            else:
                vars_.append((pipe.decls[0], value))
        return value

    def cmd(self, cmd: _Cmd, dot: Any, vars_: list[tuple[str, Any]], final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Ident):
            name = first.name
            if name in _LOGIC:
                ops = cmd.args[1:]
                result: Any = None
                for k, op in enumerate(ops):
                    result = self.arg(op, dot, vars_)
                    if truth(result) != (name == "and"):
                        return result
                if final is not _UNSET:
                    result = final
                return result
            args = [self.arg(a, dot, vars_) for a in cmd.args[1:]]
            if final is not _UNSET:
                args.append(final)
            try:
                return self.funcs[name](*args)
            except TemplateError as e:
                raise self.err(first.pos, name, str(e)) from None
            except (TypeError, AttributeError, ValueError) as e:
                raise self.err(first.pos, name, f"error calling {name}: {e}") from None
        if isinstance(first, _Field) and (len(cmd.args) > 1 or final is not _UNSET):
            return self.method(first, cmd, dot, vars_, final)
        if len(cmd.args) > 1 or final is not _UNSET:
            raise self.err(cmd.pos, self.src[cmd.pos:cmd.pos + 20].split("}}")[0].strip(),
                           "can't give argument to non-function")
        return self.arg(first, dot, vars_)

    def method(self, first: _Field, cmd: _Cmd, dot: Any, vars_: list[tuple[str, Any]], final: Any) -> Any:
        """``{{.Label "x"}}``: a method with arguments on a row (``MethodSource``), as Go calls a struct's method."""
        receiver = self.walk(dot, first.names[:-1], first.pos, first.text)
        name = first.names[-1]
        args = [self.arg(a, dot, vars_) for a in cmd.args[1:]]
        if final is not _UNSET:
            args.append(final)
        if isinstance(receiver, MethodSource) and name in receiver.METHODS:
            want = receiver.METHODS[name]
            if len(args) != want:
                raise self.err(first.pos, first.text,
                               f"wrong number of args for {name}: want {want} got {len(args)}")
            return receiver.call(name, args)
        raise self.err(cmd.pos, first.text, "can't give argument to non-function " + first.text)

    def arg(self, node: _Operand, dot: Any, vars_: list[tuple[str, Any]]) -> Any:
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Lit):
            return node.value
        if isinstance(node, _Field):
            return self.walk(dot, node.names, node.pos, node.text)
        if isinstance(node, _Var):
            for name, value in reversed(vars_):
                if name == node.name:
                    return self.walk(value, node.names, node.pos, node.text)
            raise self.err(node.pos, node.text, f"undefined variable: {node.name}")
        if isinstance(node, _Sub):
            return self.walk(self.pipe(node.pipe, dot, vars_, bind=False), node.names, node.pos, node.text)
        if isinstance(node, _Ident):
            return self.funcs[node.name]()
        raise AssertionError(node)

    def walk(self, value: Any, names: list[str], pos: int, text: str) -> Any:
        for name in names:
            if isinstance(value, FieldSource):
                try:
                    value = value.field(name)
                except KeyError:
                    raise self.err(pos, text, f"can't evaluate field {name} in type {value.type_name}") from None
            elif isinstance(value, dict):
                if name in value:
                    value = value[name]
                    if value is None and name in self.typed_nils:
                        value = self.typed_nils[name]()
                elif self.missing_key_error:
                    raise self.err(pos, text, f"map has no entry for key \"{name}\"")
                else:
                    value = NO_VALUE
            elif value is None or value is NO_VALUE:
                raise self.err(pos, text, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.err(pos, text, f"can't evaluate field {name} in type {_go_type(value)}")
        return value


_UNSET = object()


def _go_type(value: Any) -> str:
    return {str: "string", bool: "bool", int: "int", float: "float64", list: "[]interface {}"}.get(
        type(value), type(value).__name__)


class Template:
    """A parsed template; ``execute`` renders it for one value."""

    def __init__(self, src: str, funcs: dict[str, Callable[..., Any]] | None = None,
                 missing_key_error: bool = False, typed_nils: Mapping[str, Callable[[], Any]] | None = None) -> None:
        """``missing_key_error``: Go's missingkey=error; ``typed_nils``: field name -> NilSlice/NilMap,
        for JSON nulls that the Go struct behind the data holds as nil slices or maps."""
        self.src = src
        self.funcs = dict(BASIC_FUNCS if funcs is None else funcs)
        self.missing_key_error = missing_key_error
        self.typed_nils = dict(typed_nils or {})
        self.nodes = _Parser(src, self.funcs).parse()

    def execute(self, data: Any, funcs: dict[str, Callable[..., Any]] | None = None) -> str:
        ex = _Exec(self.src, funcs or self.funcs, self.missing_key_error, self.typed_nils)
        ex.run(self.nodes, data, [("$", data)])
        return "".join(ex.out)

    def execute_partial(self, data: Any, funcs: dict[str, Callable[..., Any]] | None = None) -> str:
        """What Go's Execute has written when it stops at an error (docker ignores its header pass's errors)."""
        ex = _Exec(self.src, funcs or self.funcs, self.missing_key_error, self.typed_nils)
        try:
            ex.run(self.nodes, data, [("$", data)])
        except TemplateError:
            pass
        return "".join(ex.out)


def render(src: str, data: Any, missing_key_error: bool = False) -> str:
    """Parse and execute in one go."""
    return Template(src, missing_key_error=missing_key_error).execute(data)
