// The dashboard's charts, drawn with the ECharts this plugin serves (static/echarts-*.min.js) from the
// figures the page carries (<script type="application/json" id="chart-data">): nothing is fetched.
"use strict";
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
