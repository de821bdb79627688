"""Column names of office spreadsheets, in Chinese and English, and the field each one stands for.

A hotline export calls its columns 编号, 地点, 类别, 描述, 时间; another office
writes ID, Location, Type, Details, Date.  :func:`recognise_columns` reads them
as gisgrid's own field names (``id``, ``address``, ``category``,
``description``, ``reported_at``) and names the columns it did not use, so
that nothing is dropped without a word.  Coordinates (经度/纬度, lon/lat) and
WKT are found by the reader (:data:`gisgrid.io._tabular.X_NAMES` …).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Field → the other names a column holding it goes by, in order of preference (compared case-folded,
#: spaces, underscores and hyphens ignored).  A name stands for one field only.
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "id": (
        "编号",
        "工单号",
        "工单编号",
        "案件编号",
        "案件号",
        "事件编号",
        "单号",
        "report_id",
        "case_id",
        "external_id",
    ),
    "address": ("地址", "地点", "详细地址", "事发地址", "事发地点", "发生地点", "位置", "addr", "location", "place"),
    # not the bare 类型 / type: other systems' files use them for other things (a GeoJSON feature's type)
    "category": ("类别", "问题类别", "问题类型", "类别代码", "事件类型", "案件类别", "category_code"),
    "description": ("描述", "问题描述", "事件描述", "内容", "详情", "desc", "details", "content"),
    "reported_at": (
        "时间",
        "上报时间",
        "发现时间",
        "发生时间",
        "报告时间",
        "受理时间",
        "日期",
        "上报日期",
        "date",
        "time",
        "datetime",
        "timestamp",
        "report_date",
        "report_time",
        "created_at",
    ),
    "source": ("来源", "数据来源", "案件来源", "渠道", "上报渠道", "channel", "origin"),
    "name": ("名称", "名字", "路名", "道路名称", "姓名"),
    "code": ("代码", "编码", "区划代码", "行政区划代码", "网格编码", "网格编号"),
    "level": ("级别", "层级"),
    "parent_code": ("上级代码", "上级编码", "parent"),
    "aliases": ("别名", "alias"),
    "road_class": ("道路等级", "等级"),
    "street": ("道路", "所在道路", "街路巷"),
    "housenumber": ("门牌号", "门牌", "house_number", "number"),
    "jurisdiction": ("所属区划", "区划"),
    "person": ("责任人", "人员"),
    "phone": ("电话", "联系电话", "手机", "手机号", "telephone", "mobile"),
    "title": ("职务", "职位"),
    "department": ("部门", "单位", "责任单位"),
    "role": ("角色",),
    "target_type": ("对象类型",),
    "target": ("对象", "责任对象"),
    "valid_from": ("开始日期", "起始日期", "生效日期", "from"),
    "valid_to": ("结束日期", "截止日期", "失效日期", "to"),
}


def _folded(name: str) -> str:
    return "".join(ch for ch in str(name).strip().casefold() if ch not in " _-")


@dataclass(frozen=True)
class Recognised:
    """What :func:`recognise_columns` found.

    Attributes
    ----------
    renames : dict of str to str
        Column → the field it is read as (only columns not already named so).
    unused : tuple of str
        Columns no field was read from, in the file's order.
    """

    renames: dict[str, str]
    unused: tuple[str, ...]


def recognise_columns(
    columns: Iterable[str],
    fields: Iterable[str],
    *,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
    used: Iterable[str] = (),
) -> Recognised:
    """Read a file's columns as the fields an importer wants.

    A column named like the field itself wins; else the first of the field's
    other names (``aliases`` for this layer, then :data:`FIELD_NAMES`) that is a
    column.  Every column is read as one field at most.

    Parameters
    ----------
    columns : iterable of str
        The file's columns (after explicit ``--map`` renames).
    fields : iterable of str
        The fields the importer reads, e.g. ``("id", "category", "reported_at", ...)``.
    aliases : mapping of str to tuple of str, optional
        The layer's own names for a field, tried before the common ones
        (a grid cell's 编号 is its ``code``).
    used : iterable of str
        Columns used otherwise (the geometry's lon/lat or WKT; ``row``).

    Returns
    -------
    Recognised
    """
    columns = [str(c) for c in columns]
    fields = list(fields)
    aliases = dict(aliases or {})
    by_folded: dict[str, str] = {}
    for column in columns:
        by_folded.setdefault(_folded(column), column)
    taken = set(used) | {c for c in columns if c in fields}
    renames: dict[str, str] = {}
    for field in fields:
        if field in columns:
            continue
        for name in (*aliases.get(field, ()), field, *FIELD_NAMES.get(field, ())):
            column = by_folded.get(_folded(name))
            if column is not None and column not in taken:
                renames[column] = field
                taken.add(column)
                break
    unused = tuple(c for c in columns if c not in taken)
    return Recognised(renames, unused)


__all__ = ["FIELD_NAMES", "Recognised", "recognise_columns"]
