/**
 * The browser-side code: builds the charts from the embedded JSON. Plain ES2017 with no
 * template literals so it can live in a TypeScript string verbatim.
 */
export const CLIENT_JS = `
(function () {
  'use strict';
  var payload = JSON.parse(document.getElementById('report-data').textContent);
  if (typeof Chart === 'undefined') return;
  var S = payload.summary, COLORS = payload.colors, BASE = payload.baseColor;
  var runs = S.runs;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = '#475063';
  Chart.defaults.plugins.legend.labels.boxWidth = 14;
  Chart.defaults.plugins.legend.labels.boxHeight = 2;

  function pct(v, d) { return (v * 100).toFixed(d === undefined ? 1 : d) + '%'; }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16 & 255) + ',' + (n >> 8 & 255) + ',' + (n & 255) + ',' + a + ')';
  }
  function trim(x) {
    var t = x.toPrecision(3);
    return t.indexOf('.') < 0 ? t : t.replace(/0+$/, '').replace(/\\.$/, '');
  }
  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return trim(v / 1e9) + 'G';
    if (a >= 1e6) return trim(v / 1e6) + 'M';
    if (a >= 1e3) return trim(v / 1e3) + 'k';
    return String(Math.round(v * 100) / 100);
  }
  // Seeds of one configuration share the colour and differ in dash and marker.
  var DASHES = [[], [6, 3], [2, 2], [10, 3, 2, 3]];
  var MARKS = ['circle', 'triangle', 'rect', 'rectRot'];
  var order = {};
  S.groups.forEach(function (g) { g.runs.forEach(function (ri, k) { order[ri] = k; }); });

  // ---- Accuracy vs training compute --------------------------------------------------
  var curveEl = document.getElementById('chart-curve');
  var state = { x: 'cpuSeconds', log: false };
  var maxX = { cpuSeconds: 0, samples: 0 }, minX = { cpuSeconds: Infinity, samples: Infinity };
  runs.forEach(function (r) {
    r.curve.forEach(function (p) {
      ['cpuSeconds', 'samples'].forEach(function (k) {
        if (p[k] > maxX[k]) maxX[k] = p[k];
        if (p[k] > 0 && p[k] < minX[k]) minX[k] = p[k];
      });
    });
  });
  // A log axis by default when the runs' budgets differ by more than 10x, else linear.
  var totals = runs.map(function (r) { return r.cpuSeconds; }).filter(function (v) { return v > 0; });
  state.log = totals.length > 1 && Math.max.apply(null, totals) / Math.min.apply(null, totals) > 10;
  var targets = [];
  S.computeSavings.forEach(function (c) {
    if (c.targetAccuracy === null) return;
    var data = runs[c.run].data;
    if (targets.some(function (t) { return t.data === data; })) return;
    targets.push({ data: data, acc: c.targetAccuracy, method: c.baselineMethod });
  });
  function curveData() {
    var k = state.x;
    var sets = runs.filter(function (r) { return r.curve.length > 0; }).map(function (r) {
      var c = COLORS[r.method], j = order[r.index] || 0;
      return {
        label: r.name + (r.curveMetric === 'train' ? ' (train acc.)' : ''),
        data: r.curve.map(function (p) { return { x: p[k], y: p.accuracy * 100, p: p }; }),
        borderColor: c, backgroundColor: c,
        borderDash: DASHES[j % DASHES.length], pointStyle: MARKS[j % MARKS.length],
        pointRadius: 3, pointHoverRadius: 5, borderWidth: 2, tension: 0
      };
    });
    targets.forEach(function (t) {
      var lo = state.log ? minX[k] : 0;
      sets.push({
        label: 'from-scratch final' + (targets.length > 1 ? ' · ' + t.data : '') + ' (' + pct(t.acc) + ')',
        data: [{ x: lo, y: t.acc * 100 }, { x: maxX[k], y: t.acc * 100 }],
        borderColor: '#111827', borderDash: [4, 4], borderWidth: 1, pointRadius: 0,
        pointHoverRadius: 0, backgroundColor: '#111827', isTarget: true
      });
    });
    return sets;
  }
  var curveChart = null;
  function drawCurve() {
    if (curveChart) curveChart.destroy();
    var xTitle = state.x === 'cpuSeconds' ? 'training compute (CPU-seconds, cumulative)' : 'training samples seen (cumulative)';
    curveChart = new Chart(curveEl, {
      type: 'line',
      data: { datasets: curveData() },
      options: {
        parsing: false, normalized: true,
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: {
            type: state.log ? 'logarithmic' : 'linear', min: state.log ? undefined : 0,
            title: { display: true, text: xTitle + (state.log ? ', log scale' : '') },
            ticks: {
              callback: function (v) {
                if (state.log) {
                  var m = v / Math.pow(10, Math.floor(Math.log10(v)));
                  if (Math.abs(m - 1) > 1e-6 && Math.abs(m - 2) > 1e-6 && Math.abs(m - 5) > 1e-6) return '';
                }
                return compact(v);
              },
              maxRotation: 0, autoSkip: true
            }
          },
          y: { title: { display: true, text: 'accuracy (%)' }, suggestedMax: 100,
               ticks: { callback: function (v) { return v + '%'; } } }
        },
        plugins: {
          legend: { position: 'bottom', labels: { usePointStyle: false } },
          tooltip: {
            filter: function (item) { return !item.dataset.isTarget; },
            callbacks: {
              label: function (ctx) {
                var p = ctx.raw.p;
                return ctx.dataset.label + ': ' + ctx.raw.y.toFixed(2) + '% at epoch ' + p.epoch +
                  ' (' + compact(p.cpuSeconds) + ' CPU-s, ' + compact(p.samples) + ' samples)';
              }
            }
          }
        }
      }
    });
  }
  if (curveEl) {
    drawCurve();
    document.querySelectorAll('[data-curve-x]').forEach(function (b) {
      b.addEventListener('click', function () {
        state.x = b.getAttribute('data-curve-x'); sync(); drawCurve();
      });
    });
    document.querySelectorAll('[data-curve-scale]').forEach(function (b) {
      b.addEventListener('click', function () {
        state.log = b.getAttribute('data-curve-scale') === 'log'; sync(); drawCurve();
      });
    });
    var sync = function () {
      document.querySelectorAll('[data-curve-x]').forEach(function (b) {
        b.setAttribute('aria-pressed', String(b.getAttribute('data-curve-x') === state.x));
      });
      document.querySelectorAll('[data-curve-scale]').forEach(function (b) {
        b.setAttribute('aria-pressed', String((b.getAttribute('data-curve-scale') === 'log') === state.log));
      });
    };
    sync();
  }

  // ---- Final accuracy by method (mean ± std over seeds) -----------------------------
  var errorBars = {
    id: 'errorBars',
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, x = chart.scales.x;
      chart.data.datasets.forEach(function (ds, i) {
        var meta = chart.getDatasetMeta(i);
        if (meta.hidden) return;
        meta.data.forEach(function (bar, j) {
          var v = ds.data[j];
          if (v === null || v === undefined) return;
          var err = ds.errors ? ds.errors[j] : null;
          var right = x.getPixelForValue(v + (err || 0));
          ctx.save();
          if (err) {
            var left = x.getPixelForValue(v - err);
            ctx.strokeStyle = '#1f2937'; ctx.lineWidth = 1.5;
            ctx.beginPath();
            ctx.moveTo(left, bar.y); ctx.lineTo(right, bar.y);
            ctx.moveTo(left, bar.y - 6); ctx.lineTo(left, bar.y + 6);
            ctx.moveTo(right, bar.y - 6); ctx.lineTo(right, bar.y + 6);
            ctx.stroke();
          }
          ctx.fillStyle = '#1f2937';
          ctx.font = '600 12px ' + Chart.defaults.font.family;
          ctx.textAlign = 'left'; ctx.textBaseline = 'middle';
          ctx.fillText(v.toFixed(1) + '%' + (err ? ' ± ' + err.toFixed(1) : ''), right + 6, bar.y);
          ctx.restore();
        });
      });
    }
  };
  var finalEl = document.getElementById('chart-final');
  if (finalEl) {
    var manyData = S.baseAccuracies.length > 1 ||
      S.groups.some(function (g) { return g.data !== S.groups[0].data; });
    var labels = [], vals = [], errs = [], colors = [], notes = [];
    S.baseAccuracies.forEach(function (b) {
      labels.push(manyData ? ['original model', b.data] : ['original model', 'before adaptation']);
      vals.push(b.accuracy * 100); errs.push(null); colors.push(BASE); notes.push('base model');
    });
    S.groups.forEach(function (g) {
      if (g.meanAccuracy === null) return;
      var sub = (g.label === g.method ? '' : g.method) + (g.n > 1 ? ' · ' + g.n + ' seeds' : '');
      labels.push(sub ? [g.name, sub.replace(/^ · /, '')] : g.name);
      vals.push(g.meanAccuracy * 100);
      errs.push(g.stdAccuracy === null ? null : g.stdAccuracy * 100);
      colors.push(COLORS[g.method]);
      notes.push(g.n > 1 ? 'mean of ' + g.n + ' seeds (' + g.seeds.join(', ') + ')' : 'seed ' + g.seeds[0]);
    });
    var lo = Infinity;
    vals.forEach(function (v, i) { lo = Math.min(lo, v - (errs[i] || 0)); });
    var xMin = Math.max(0, Math.floor((lo - 2) / 2) * 2);
    var axisNote = document.getElementById('final-axis-note');
    if (axisNote && xMin > 0) axisNote.textContent = 'The axis starts at ' + xMin + '%, not 0, so small differences are visible.';
    finalEl.parentNode.style.height = Math.max(220, 50 + labels.length * 44) + 'px';
    new Chart(finalEl, {
      type: 'bar',
      data: { labels: labels, datasets: [{ label: 'final accuracy', data: vals, errors: errs,
        backgroundColor: colors.map(function (c) { return alpha(c, 0.85); }), borderColor: colors,
        borderWidth: 1, barPercentage: 0.8, categoryPercentage: 0.9 }] },
      options: {
        indexAxis: 'y',
        layout: { padding: { right: 86 } },
        scales: {
          x: { min: xMin, max: 100, title: { display: true, text: 'final test accuracy (%)' },
               ticks: { callback: function (v) { return v + '%'; } } },
          y: { ticks: { autoSkip: false } }
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            label: function (ctx) {
              var err = errs[ctx.dataIndex];
              return ctx.raw.toFixed(2) + '%' + (err ? ' ± ' + err.toFixed(2) : '') + ' (' + notes[ctx.dataIndex] + ')';
            }
          } }
        }
      },
      plugins: [errorBars]
    });
  }

  // ---- Compute spent and time to the from-scratch accuracy ---------------------------
  var computeEl = document.getElementById('chart-compute');
  if (computeEl) {
    var byRun = {};
    S.computeSavings.forEach(function (c) { byRun[c.run] = c; });
    var ordered = [];
    S.groups.forEach(function (g) { g.runs.forEach(function (i) { ordered.push(runs[i]); }); });
    var tta = ordered.map(function (r) {
      var c = byRun[r.index];
      return c && c.reached ? c.timeToAccuracyCpuSeconds : null;
    });
    var sets = [{
      label: 'total training compute', data: ordered.map(function (r) { return r.cpuSeconds; }),
      backgroundColor: ordered.map(function (r) { return alpha(COLORS[r.method], 0.35); }),
      borderColor: ordered.map(function (r) { return COLORS[r.method]; }), borderWidth: 1,
      barPercentage: 0.9, categoryPercentage: 0.85
    }];
    if (tta.some(function (v) { return v !== null; })) {
      sets.push({
        label: 'compute to reach the from-scratch accuracy', data: tta,
        backgroundColor: ordered.map(function (r) { return COLORS[r.method]; }),
        borderWidth: 0, barPercentage: 0.9, categoryPercentage: 0.85
      });
    }
    computeEl.parentNode.style.height = Math.max(220, 70 + ordered.length * (sets.length > 1 ? 40 : 30)) + 'px';
    new Chart(computeEl, {
      type: 'bar',
      data: { labels: ordered.map(function (r) { return r.name; }), datasets: sets },
      options: {
        indexAxis: 'y',
        scales: { x: { beginAtZero: true, title: { display: true, text: 'training compute (CPU-seconds)' },
                       ticks: { callback: function (v) { return compact(v); } } } },
        plugins: {
          legend: { position: 'bottom', labels: { boxHeight: 10 } },
          tooltip: { callbacks: { label: function (ctx) {
            return ctx.dataset.label + ': ' + (ctx.raw === null ? 'not reached' : ctx.raw.toFixed(1) + ' CPU-s');
          } } }
        }
      }
    });
  }
})();
`;
