"""The CLI's pure parts alone: the Go-template subset, docker's table writer, units and timestamps."""

from __future__ import annotations

import datetime
import time

import pytest

from dockyard.cli import output
from dockyard.cli.gotemplate import TemplateError, go_float, render
from dockyard.cli.images import image_rows
from dockyard.cli.system import get_timestamp, parse_go_duration
from dockyard.util import timefmt

DATA = {"Name": "web", "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Cmd": None},
        "Count": 3, "Empty": [], "Flag": False, "Size": 1982563}


@pytest.mark.parametrize("tmpl,expected", [
    ("{{.Name}}", "web"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Cmd}}", "<nil>"),
    ("{{json .Config.Labels}}", '{"a":"1","b":"2"}'),
    ("{{json .Name}}", '"web"'),
    ('{{json "<a&b>"}}', '"<a&b>"'),  # docker's json function: SetEscapeHTML(false)
    ('{{index .Config.Labels "a"}}', "1"),
    ('{{index .Config.Labels "zz"}}', ""),
    ("{{index .Config.Env 1}}", "B=2"),
    ("{{range .Config.Env}}<{{.}}>{{end}}", "<A=1><B=2>"),
    ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}", "0=A=1;1=B=2;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}", "a1b2"),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{if .Flag}}y{{else}}n{{end}}", "n"),
    ("{{if .Flag}}a{{else if .Count}}b{{else}}c{{end}}", "b"),
    ("{{if and .Count (not .Flag)}}ok{{end}}", "ok"),
    ('{{if eq .Name "web" "db"}}match{{end}}', "match"),
    ("{{if gt .Count 2}}big{{end}}", "big"),
    ('{{join .Config.Env ","}}', "A=1,B=2"),
    ('{{split "a:b:c" ":"}}', "[a b c]"),
    ("{{lower \"ABC\"}}{{upper .Name}}", "abcWEB"),
    ("{{.Name | upper}}", "WEB"),
    ("{{title \"hello world\"}}", "Hello World"),
    ('{{pad .Name 1 2}}|', " web  |"),
    ("{{truncate .Name 2}}", "we"),
    ("{{println .Name}}", "web\n"),
    ("{{println}}", "\n"),
    ('{{printf "%s-%d" .Name .Count}}', "web-3"),
    ("{{len .Config.Env}}", "2"),
    ("{{with .Config}}{{.Env}}{{end}}", "[A=1 B=2]"),
    ("{{with .Empty}}x{{else}}empty{{end}}", "empty"),
    ("{{$n := .Name}}{{range .Config.Env}}{{$n}}{{end}}", "webweb"),
    ("{{$.Name}}", "web"),
    ("a  {{- .Name -}}  b", "awebb"),
    ("{{/* a comment */}}x", "x"),
    ("{{(index .Config.Env 0)}}", "A=1"),
    ("{{.Size}}", "1982563"),
    ("{{.Flag}} {{.Count}}", "false 3"),
    ('{{"quoted \\"x\\""}}', 'quoted "x"'),
])
def test_render(tmpl: str, expected: str) -> None:
    assert render(tmpl, DATA) == expected


def test_missing_key_and_errors() -> None:
    assert render("{{.Nope}}", DATA) == "<no value>"
    with pytest.raises(TemplateError, match=r'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'):
        render("{{.Nope}}", DATA, missing_key_error=True)
    with pytest.raises(TemplateError, match='function "nofunc" not defined'):
        render("{{nofunc .Name}}", DATA)
    with pytest.raises(TemplateError, match="unexpected EOF"):
        render("{{if .Name}}x", DATA)
    with pytest.raises(TemplateError, match="unexpected {{end}}"):
        render("x{{end}}", DATA)
    with pytest.raises(TemplateError, match="unclosed action"):
        render("{{.Name", DATA)
    with pytest.raises(TemplateError, match="can't evaluate field X in type string"):
        render("{{.Name.X}}", DATA)


def test_context_fields_are_struct_like() -> None:
    img = {"Id": "sha256:" + "ab" * 32, "Created": 0, "Size": 1982563, "RepoTags": ["busybox:latest"],
           "RepoDigests": [], "SharedSize": -1, "Containers": -1}
    (row,) = list(image_rows([img], trunc=True, digests=False))
    assert render("{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}} {{.Containers}}", row) == \
        "abababababab busybox:latest 1.98MB N/A"
    with pytest.raises(TemplateError, match=r"can't evaluate field Nope in type \*formatter.imageContext"):
        render("{{.Nope}}", row)
    assert render("{{json .}}", row).startswith('{"Containers":"N/A","CreatedAt":')


def test_image_rows_digests_and_dangling() -> None:
    img = {"Id": "sha256:" + "cd" * 32, "Created": 0, "Size": 1,
           "RepoTags": ["a:1", "b:2", "a:3"], "RepoDigests": ["a@sha256:" + "0" * 64, "c@sha256:" + "1" * 64]}
    plain = [(r.Repository(), r.Tag(), r.Digest()) for r in image_rows([img], True, False)]
    assert plain == [("a", "1", "<none>"), ("a", "3", "<none>"), ("b", "2", "<none>"), ("c", "<none>", "")]
    with_digests = [(r.Repository(), r.Tag(), r.Digest()) for r in image_rows([img], True, True)]
    assert ("a", "1", "sha256:" + "0" * 64) in with_digests and ("c", "<none>", "sha256:" + "1" * 64) in with_digests
    dangling = {"Id": "sha256:" + "ef" * 32, "Created": 0, "Size": 1, "RepoTags": None, "RepoDigests": None}
    assert [(r.Repository(), r.Tag()) for r in image_rows([dangling], True, False)] == [("<none>", "<none>")]


def test_tabwriter_matches_go() -> None:
    text = "REPOSITORY\tTAG\tIMAGE ID\nbusybox\tlatest\t4f4f7bbc0145\nexample.com/team/tool\t1.0\tx\n"
    assert output.tabwrite(text) == (
        "REPOSITORY              TAG       IMAGE ID\n"
        "busybox                 latest    4f4f7bbc0145\n"
        "example.com/team/tool   1.0       x\n")
    # an empty last column still pads the one before it, as docker history's COMMENT does
    assert output.tabwrite("A\tB\t\nxx\tyy\t\n") == "A         B         \nxx        yy        \n"
    # a line without tabs ends a column block
    assert output.tabwrite("a\tb\nplain\nlonger-cell\tc\n") == "a         b\nplain\nlonger-cell   c\n"


def test_units() -> None:
    assert output.human_size(1982563, 3) == "1.98MB"
    assert output.human_size(1982563) == "1.983MB"
    assert output.human_size(0) == "0B"
    assert output.human_size(999) == "999B"
    assert output.human_size(2_140_000_000) == "2.14GB"
    assert output.bytes_size(25_275_555_840) == "23.54GiB"
    assert output.human_duration(0.5) == "Less than a second"
    assert output.human_duration(1) == "1 second"
    assert output.human_duration(59) == "59 seconds"
    assert output.human_duration(61) == "About a minute"
    assert output.human_duration(3600 * 1.4) == "About an hour"
    assert output.human_duration(3600 * 5) == "5 hours"
    assert output.human_duration(86400 * 3) == "3 days"
    assert output.human_duration(86400 * 20) == "2 weeks"
    assert output.human_duration(86400 * 100) == "3 months"
    assert output.human_duration(86400 * 365 * 3) == "3 years"
    assert output.truncate_id("sha256:" + "ab" * 32) == "abababababab"
    assert output.truncate_id("<missing>") == "<missing>"
    assert output.ellipsis("x" * 50, 45) == "x" * 44 + "…"
    assert go_float(1982563.0) == "1.982563e+06" and go_float(0.25) == "0.25" and go_float(123456.0) == "123456"


def test_durations_and_timestamps() -> None:
    assert parse_go_duration("10m") == 600 * 10**9
    assert parse_go_duration("1h30m") == 5400 * 10**9
    assert parse_go_duration("1.5s") == 1_500_000_000
    assert parse_go_duration("2023-01-01") is None
    assert parse_go_duration("10") is None
    now = 1_700_000_000.0
    assert get_timestamp("10m", now) == str(int(now) - 600)
    assert get_timestamp("0s", now) == str(int(now))
    assert get_timestamp("1700000000", now) == "1700000000"
    assert get_timestamp("1700000000.5", now) == "1700000000.5"
    assert get_timestamp("2023-11-14T22:13:20Z", now) == "1700000000.000000000"
    assert get_timestamp("2023-11-14T23:13:20+01:00", now) == "1700000000.000000000"
    local = datetime.datetime(2023, 11, 14).astimezone()
    assert get_timestamp("2023-11-14", now) == f"{int(local.timestamp())}.000000000"


def test_time_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert timefmt.rfc3339_nano_fixed_local(1_700_000_000_000_000_123) == "2023-11-14T22:13:20.000000123Z"
        assert timefmt.rfc3339_local(1_700_000_000) == "2023-11-14T22:13:20Z"
        assert timefmt.go_time_string(1_700_000_000) == "2023-11-14 22:13:20 +0000 UTC"
        monkeypatch.setenv("TZ", "Europe/Berlin")
        time.tzset()
        assert timefmt.rfc3339_local(1_700_000_000) == "2023-11-14T23:13:20+01:00"
        assert timefmt.go_time_string(1_700_000_000) == "2023-11-14 23:13:20 +0100 CET"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert timefmt.parse_seconds("2023-11-14T22:13:20Z") == 1_700_000_000
    assert timefmt.parse_seconds("2023-11-14T22:13:20.5+00:00") == 1_700_000_000.5


def test_typed_nils() -> None:
    from dockyard.cli.output import render_template
    data = {"Config": {"Entrypoint": None, "Labels": None, "User": None}}
    assert render_template("{{.Config.Entrypoint}} {{.Config.Labels}} {{json .Config.Entrypoint}} "
                           "{{len .Config.Labels}} {{.Config.User}}", [data]) == "[] map[] null 0 <nil>\n"
