"""Reading the status page's DOM as headless Chromium dumped it (`--dump-dom`).

The page (proxy/ui/app.js) builds its tables and SVG charts after the JSON
arrives; these helpers read back what a user would see: the rows of each table
by id (cell texts plus the row's `data-*` attributes), every chart's
`data-chart`/`data-points` and polylines, and which sections are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    head: bool = False


@dataclass
class Chart:
    name: str
    points: int
    polylines: list[str] = field(default_factory=list)


class StatusDom(HTMLParser):
    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tables: dict[str, list[Row]] = {}
        self.charts: dict[str, Chart] = {}
        self.hidden: set[str] = set()
        self.body: dict[str, str] = {}
        self._table: str | None = None
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._chart: Chart | None = None
        self.raw = dom
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a and "hidden" in a:
            self.hidden.add(a["id"])
        if tag == "body":
            self.body = a
        elif tag == "table" and "id" in a:
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = Row(a)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._row.classes.append(a.get("class", ""))
            self._row.head = self._row.head or tag == "th"
        elif tag == "svg" and "data-chart" in a:
            self._chart = Chart(a["data-chart"], int(a.get("data-points", "0")))
            self.charts[self._chart.name] = self._chart
        elif tag == "polyline" and self._chart is not None:
            self._chart.polylines.append(a.get("points", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "svg":
            self._chart = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> list[Row]:
        """The data rows of a table (header rows left out)."""
        return [r for r in self.tables.get(table, []) if not r.head]
