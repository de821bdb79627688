"""Settings come from defaults, then the instance file, then GISGRID_* environment variables."""

from __future__ import annotations

from gisgrid.config import load_settings


def test_instance_file_then_environment(tmp_path):
    cfg = tmp_path / "gisgrid.cfg"
    cfg.write_text('PG_PORT = 6000\nSEGMENT_MAX_LENGTH_M = 300.0\nMETRIC_CRS = "EPSG:4547"\n', encoding="utf-8")
    s = load_settings(
        env={"GISGRID_PG_PORT": "6001", "GISGRID_ROAD_HALF_WIDTHS_M": '{"primary": 9}'}, instance_file=cfg
    )
    assert s.pg_port == 6001  # environment wins over the file
    assert s.segment_max_length_m == 300.0  # file wins over defaults
    assert s.metric_crs == "EPSG:4547"
    assert s.road_half_widths_m == {"primary": 9}
    assert s.managed


def test_database_url_means_no_managed_cluster():
    s = load_settings(env={"GISGRID_DATABASE_URL": "postgresql://u@db.example/gis"}, instance_file="/nonexistent")
    assert not s.managed
    from gisgrid.db import database_url

    assert database_url(s) == "postgresql+psycopg://u@db.example/gis"
