// Draws the dashboard charts after first paint; the figures are already in the page's HTML.
(function () {
  "use strict";
  function start() {
    if (!window.echarts) { return; }
    var data = JSON.parse(document.getElementById("chart-data").textContent);
    var L = data.labels;
    var charts = [];
    function make(id, option, onClick) {
      var el = document.getElementById(id);
      if (!el) { return; }
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      option.animation = false;
      option.grid = option.grid || { left: 48, right: 16, top: 36, bottom: 56, containLabel: true };
      option.tooltip = option.tooltip || { trigger: "axis" };
      chart.setOption(option);
      if (onClick) { chart.on("click", onClick); }
      charts.push(chart);
    }
    function cumulative(id, s) {
      if (!s) { return; }
      var series = [{ name: L.cumulative, type: "line", data: s.cumulative, label: { show: true }, color: "#b3261e" }];
      if (s.target) {
        series.push({ name: L.target, type: "line", data: s.years.map(function () { return s.target; }),
          lineStyle: { type: "dashed" }, symbol: "none", color: "#57606a" });
      }
      make(id, { legend: { top: 0 }, xAxis: { type: "category", data: s.years }, yAxis: { type: "value" }, series: series });
    }
    cumulative("chart-c03", data.cumulative.C03);
    cumulative("chart-c04", data.cumulative.C04);
    if (data.yearly) {
      make("chart-yearly", {
        legend: { top: 0 },
        xAxis: { type: "category", data: data.yearly.years },
        yAxis: [{ type: "value" }, { type: "value", axisLabel: { formatter: "{value}%" } }],
        series: [
          { name: L["new"], type: "bar", data: data.yearly.values, label: { show: true, position: "top" }, color: "#b3261e" },
          { name: L.change, type: "line", yAxisIndex: 1, data: data.yearly.changes, color: "#0a58ca" }
        ]
      });
    }
    function bars(id, s, drillKey, color) {
      if (!s || !s.labels.length) { return; }
      make(id, {
        xAxis: { type: "category", data: s.labels, axisLabel: { rotate: s.labels.length > 4 ? 30 : 0, interval: 0 } },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ name: L.patent_deals, type: "bar", data: s.values, label: { show: true, position: "top" }, color: color || "#b3261e" }]
      }, drillKey ? function (p) {
        var key = s.keys[p.dataIndex];
        if (key) { window.location.href = data.drill + drillKey + "=" + encodeURIComponent(key); }
      } : null);
    }
    bars("chart-district", data.by_district, "district");
    bars("chart-supplier", data.by_supplier, null, "#6639ba");
    bars("chart-industry", data.by_industry, null, "#1a7f37");
    bars("chart-pool", data.pool_by_district, null, "#0a58ca");
    if (data.by_kind && data.by_kind.labels.length) {
      make("chart-kind", {
        tooltip: { trigger: "item" },
        legend: { bottom: 0 },
        series: [{ type: "pie", radius: ["35%", "65%"], data: data.by_kind.labels.map(function (l, i) {
          return { name: l, value: data.by_kind.values[i] };
        }) }]
      });
    }
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    document.documentElement.setAttribute("data-charts", "ready");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
