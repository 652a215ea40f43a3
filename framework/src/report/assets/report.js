// Sorting the table, the charts, and the marks the browser test reads: each chart element gets
// data-state (ok, empty, error, unavailable) and data-marks (drawn line and point paths); the
// body gets data-ready and data-errors once every chart settled.
(function () {
  var data = JSON.parse(document.getElementById('difflab-data').textContent);

  // The table: a click on a header sorts by it; again reverses. Missing values sort last.
  var table = document.getElementById('runs');
  if (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener('click', function () {
        var up = th.getAttribute('data-sort') !== 'asc';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-sort'); h.querySelector('.arrow').textContent = ''; });
        th.setAttribute('data-sort', up ? 'asc' : 'desc');
        th.querySelector('.arrow').textContent = up ? '\u25B2' : '\u25BC';
        var numeric = th.classList.contains('num');
        var rows = Array.prototype.slice.call(table.tBodies[0].rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
          if (x === null || x === '') return y === null || y === '' ? 0 : 1;
          if (y === null || y === '') return -1;
          var r = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, {numeric: true});
          return up ? r : -r;
        });
        rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
      });
    });
  }

  var charts = Array.prototype.slice.call(document.querySelectorAll('.chart'));
  function finish() {
    var errors = window.__difflabErrors;
    document.body.setAttribute('data-errors', String(errors.length));
    if (errors.length) {
      var pre = document.getElementById('errors');
      pre.textContent = 'errors on this page:\n' + errors.join('\n');
      pre.className = 'shown';
    }
    document.body.setAttribute('data-ready', 'yes');
  }
  if (typeof vegaEmbed !== 'function') {
    charts.forEach(function (el) {
      el.className += ' unavailable';
      el.setAttribute('data-state', 'unavailable');
      el.textContent = 'Charts unavailable: the Vega-Lite bundles were not found when this report was written (see the README, "HTML report").';
    });
    finish();
    return;
  }

  var palette = {scheme: 'tableau10'};
  function render(el, spec) {
    spec.$schema = 'https://vega.github.io/schema/vega-lite/v5.json';
    spec.width = 'container';
    spec.autosize = {type: 'fit-x', contains: 'padding'};
    spec.config = {view: {stroke: '#dde2e8'}, axis: {gridColor: '#eef1f4', labelColor: '#5f6b7a', titleColor: '#1d232b'},
                   legend: {labelLimit: 260, orient: 'bottom', columns: 3}};
    return vegaEmbed(el, spec, {actions: false, renderer: 'svg'}).then(function (result) {
      var marks = el.querySelectorAll('.mark-line path, .mark-symbol path').length;
      el.setAttribute('data-marks', String(marks));
      el.setAttribute('data-state', marks > 0 ? 'ok' : 'empty');
      return result;
    }).catch(function (e) {
      el.setAttribute('data-state', 'error');
      window.__difflabErrors.push('chart ' + el.id + ': ' + (e && e.message ? e.message : e));
    });
  }

  var jobs = [];
  var lossEl = document.getElementById('chart-loss');
  var lossView = null;
  function lossSpec(log) {
    return {
      height: 300,
      data: {values: data.losses},
      mark: {type: 'line', strokeWidth: 1.6, clip: true},
      encoding: {
        x: {field: 'step', type: 'quantitative', title: 'training step'},
        y: {field: 'loss', type: 'quantitative', title: 'training loss (epoch mean)',
            scale: log ? {type: 'log'} : {zero: false}},
        color: {field: 'run', type: 'nominal', title: 'run', sort: data.run_order, scale: palette},
        tooltip: [{field: 'run'}, {field: 'epoch', type: 'quantitative'}, {field: 'step', type: 'quantitative'},
                  {field: 'loss', type: 'quantitative', format: '.4g'}]
      }
    };
  }
  if (lossEl && data.losses.length) {
    var logBox = document.getElementById('loss-log');
    jobs.push(render(lossEl, lossSpec(logBox.checked)).then(function (r) { lossView = r; }));
    logBox.addEventListener('change', function () {
      if (lossView) lossView.finalize();
      render(lossEl, lossSpec(logBox.checked)).then(function (r) { lossView = r; });
    });
  }
  data.charts.forEach(function (chart, i) {
    var el = document.getElementById('chart-metric-' + i);
    var values = data.metrics.filter(function (m) { return m.chart === i; });
    var encoding = {
      x: {field: 'epoch', type: 'quantitative', title: 'checkpoint (epoch)'},
      y: {field: 'value', type: 'quantitative', title: chart.metric + (chart.higher ? ' (higher is better)' : ' (lower is better)'),
          scale: {zero: false}},
      color: {field: 'run', type: 'nominal', title: 'run', sort: data.run_order, scale: palette},
      tooltip: [{field: 'run'}, {field: 'sampler'}, {field: 'epoch', type: 'quantitative'},
                {field: 'step', type: 'quantitative'}, {field: 'value', type: 'quantitative', format: '.4g'}]
    };
    if (chart.samplers > 1) {
      encoding.strokeDash = {field: 'sampler', type: 'nominal', title: 'sampler',
                             legend: {symbolType: 'stroke', symbolStrokeWidth: 2, symbolStrokeColor: '#5f6b7a'}};
      encoding.detail = {field: 'sampler'};
    }
    jobs.push(render(el, {height: 260, data: {values: values},
                          mark: {type: 'line', point: {size: 36}, strokeWidth: 1.6}, encoding: encoding}));
  });
  // Quality against cost: NFE on a log axis (model calls span decades), a colour per sampler
  // family, a dash per run when several are shown.
  (data.nfe_charts || []).forEach(function (chart, i) {
    var el = document.getElementById('nfe-chart-' + i);
    // A metric spanning decades (a sampler that diverges at few steps) on a log axis too, so the
    // others stay readable; only when every value is positive.
    var finite = chart.values.map(function (v) { return v.value; }).filter(function (v) { return v !== null; });
    var lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
    var logY = finite.length > 0 && lo > 0 && hi / lo > 20;
    var encoding = {
      x: {field: 'nfe', type: 'quantitative', title: 'model calls per sample (NFE, log scale)',
          scale: {type: 'log'}, axis: {tickCount: 6, format: '~s'}},
      y: {field: 'value', type: 'quantitative',
          title: chart.metric + (chart.higher ? ' (higher is better' : ' (lower is better') + (logY ? ', log scale)' : ')'),
          scale: logY ? {type: 'log'} : {zero: false}},
      color: {field: 'family', type: 'nominal', title: 'sampler', scale: palette},
      tooltip: [{field: 'run'}, {field: 'sampler'}, {field: 'nfe', type: 'quantitative', title: 'NFE'},
                {field: 'epoch', type: 'quantitative'}, {field: 'value', type: 'quantitative', format: '.4g'}]
    };
    if (chart.runs > 1) {
      encoding.strokeDash = {field: 'run', type: 'nominal', title: 'run', sort: data.run_order,
                             legend: {symbolType: 'stroke', symbolStrokeWidth: 2, symbolStrokeColor: '#5f6b7a'}};
      encoding.detail = {field: 'run'};
    }
    jobs.push(render(el, {height: 260, data: {values: chart.values},
                          mark: {type: 'line', point: {size: 36}, strokeWidth: 1.6}, encoding: encoding}));
  });
  Promise.all(jobs).then(finish, finish);
})();
