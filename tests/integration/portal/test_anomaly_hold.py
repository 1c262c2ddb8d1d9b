"""A batch held as an anomaly (预测预警) tells its department why in the portal, not "too many problem rows"."""

from __future__ import annotations

import psycopg


def test_a_batch_held_as_an_anomaly_says_so_on_its_page(client_for, portal_env) -> None:
    with psycopg.connect(portal_env.url) as conn:
        for load_id, quarantined in (("sthjj_penalty-anomaly", 0), ("sthjj_penalty-tolerance", 3)):
            conn.execute(
                "insert into ops.loads (load_id, source_id, department, dataset, channel, reference, sha256, bytes,"
                " status, rows_received, rows_accepted, rows_quarantined)"
                " values (%s, 'sthjj_penalty', 'sthjj', 'admin_penalty', 'portal', %s, %s, 10, 'held', 4, %s, %s)",
                (load_id, f"{load_id}.xlsx", load_id, 4 - quarantined, quarantined))
    client = client_for("sthjj_submitter")
    anomaly = client.get("/history/sthjj_penalty-anomaly").text
    assert "与以往报送明显不同" in anomaly and "问题数据比例超过" not in anomaly
    tolerance = client.get("/history/sthjj_penalty-tolerance").text
    assert "问题数据比例超过" in tolerance and "与以往报送明显不同" not in tolerance
