// The dashboard's charts, drawn with the ECharts this plugin serves (static/echarts-*.min.js) from the
// figures the page carries (<script type="application/json" id="chart-data">): nothing is fetched.
// A department's tables are drawn here too, from the rows the page carries (id="table-data"), each cell
// already formatted and masked by the server: set as text (textContent), never parsed as markup.
"use strict";
(function () {
  const rows = document.getElementById("table-data");
  if (!rows) return;
  const tables = JSON.parse(rows.textContent);
  const cell = (row, text, className) => {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  };
  const fill = (id, items, drawRow) => {
    const table = document.getElementById(id);
    if (!table) return;
    const body = table.tBodies[0];
    if (items.length === 0) cell(body.insertRow(), body.dataset.empty, "empty").colSpan = table.tHead.rows[0].cells.length;
    items.forEach((item) => drawRow(body.insertRow(), item));
    table.dataset.drawn = "true";
  };
  fill("cards", tables.cards, (row, card) => {
    row.dataset.source = card.source_id === null ? "" : card.source_id;
    if (card.source_id === null) row.className = "total";
    cell(row, card.title);
    card.cells.forEach((text) => cell(row, text, "num"));
  });
  fill("batches", tables.batches, (row, batch) => {
    row.dataset.load = batch.load_id;
    const first = cell(row, "");
    const link = document.createElement("a");
    link.setAttribute("href", batch.href);
    link.textContent = batch.load_id;
    first.append(link);
    if (batch.flag !== null) {
      row.className = "anomalous";
      const badge = document.createElement("span");
      badge.className = "badge bad";
      badge.textContent = batch.flag;
      first.append(" ", badge);
    }
    [batch.title, batch.reference, batch.data_date, batch.received_at].forEach((text) => cell(row, text));
    const badge = document.createElement("span");
    badge.className = "badge status-" + batch.status;
    badge.textContent = batch.status_label;
    cell(row, "").append(badge);
    batch.counts.forEach((text) => cell(row, text, "num"));
  });
})();
(function () {
  const source = document.getElementById("chart-data");
  if (!source || typeof echarts === "undefined") return;
  const data = JSON.parse(source.textContent);
  const pct = (v) => (v === null || v === undefined ? null : Math.round(v * 1000) / 10);
  const draw = (id, option) => {
    const element = document.getElementById(id);
    if (!element) return;
    const chart = echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(Object.assign({ animation: false, textStyle: { fontFamily: "Noto Sans CJK SC, sans-serif" } }, option));
    element.dataset.drawn = "true";
    window.addEventListener("resize", () => chart.resize());
  };
  if (data.ranking) {
    draw("ranking-chart", {
      tooltip: { trigger: "axis" },
      legend: { data: ["得分", "报送及时率", "数据合格率"] },
      grid: { left: 48, right: 24, bottom: 60 },
      xAxis: { type: "category", data: data.ranking.map((r) => r.department_name), axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [
        { name: "得分", type: "bar", data: data.ranking.map((r) => (r.score === null ? null : Math.round(r.score * 10) / 10)) },
        { name: "报送及时率", type: "line", data: data.ranking.map((r) => pct(r.timeliness)) },
        { name: "数据合格率", type: "line", data: data.ranking.map((r) => pct(r.quality)) },
      ],
    });
  }
  if (data.trend) {
    const departments = Object.values(data.trend);
    draw("trend-chart", {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", data: departments.map((d) => d.name) },
      grid: { left: 48, right: 24, bottom: 40 },
      xAxis: { type: "category", data: data.months },
      yAxis: { type: "value", min: 0, max: 100, name: "及时率 %" },
      // one value per month of data.months, null where the department had no card
      series: departments.map((d) => ({ name: d.name, type: "line", connectNulls: false, data: d.timeliness.map(pct) })),
    });
  }
  if (data.cards) {
    const items = data.cards.filter((c) => c.source_id !== null);
    draw("department-chart", {
      tooltip: { trigger: "axis" },
      legend: { data: ["报送及时率", "完整率", "数据合格率", "问题数据整改率"] },
      grid: { left: 48, right: 24, bottom: 60 },
      xAxis: { type: "category", data: items.map((c) => c.title || c.source_id), axisLabel: { interval: 0, rotate: 20 } },
      yAxis: { type: "value", min: 0, max: 100, name: "%" },
      series: ["timeliness", "completeness", "quality", "correction"].map((key, i) => ({
        name: ["报送及时率", "完整率", "数据合格率", "问题数据整改率"][i], type: "bar", data: items.map((c) => pct(c[key])),
      })),
    });
  }
})();
