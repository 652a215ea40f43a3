// Sorting the table, the charts, the distribution view's UMAP, and the marks the browser test
// reads: each chart element gets data-state (ok, empty, error, unavailable) and data-marks (drawn
// line and point paths), the UMAP's also data-points and data-drawn (the points it embeds, and
// those drawn); the body gets data-ready and data-errors once every chart (and the first UMAP)
// settled.
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
    var line = {mark: {type: 'line', point: {size: 36}, strokeWidth: 1.6}, encoding: encoding};
    if (!data.over) {
      jobs.push(render(el, {height: 260, data: {values: values}, mark: line.mark, encoding: encoding}));
      return;
    }
    // --over: a line per group at its mean, in a band between the ends of its interval.
    encoding.color.title = 'runs over ' + data.over;  // the band's colour shares this legend
    encoding.tooltip = [{field: 'run', title: 'group'}, {field: 'sampler'}, {field: 'epoch', type: 'quantitative'},
                        {field: 'value', type: 'quantitative', format: '.4g', title: 'mean'},
                        {field: 'ci_low', type: 'quantitative', format: '.4g'},
                        {field: 'ci_high', type: 'quantitative', format: '.4g'}, {field: 'n', type: 'quantitative'}];
    var band = {
      mark: {type: 'area', opacity: 0.18},
      encoding: {x: encoding.x,
                 y: {field: 'ci_low', type: 'quantitative', title: encoding.y.title, scale: {zero: false}},
                 y2: {field: 'ci_high'},
                 color: {field: 'run', type: 'nominal', sort: data.run_order, scale: palette},
                 detail: {field: 'sampler'}}
    };
    jobs.push(render(el, {height: 260, data: {values: values}, layer: [band, line]}));
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

  // The distribution view: a UMAP (McInnes et al. 2018) of one run's real and generated points
  // (data.distributions), computed here by umap-js in slices of epochs so that the page stays
  // responsive, then drawn as a scatter. The first view on load, the others when chosen.

  // mulberry32: a small seeded generator for umap-js's random choices, so that a view's
  // embedding is the same each time the page opens.
  function seeded(seed) {
    return function () {
      seed = (seed + 0x6D2B79F5) | 0;
      var t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  var umapTurn = 0, umapView = null;  // the view being computed or shown; its Vega view
  // The 2-D embedding of `points`, or null when another view was chosen before it finished.
  function embed(points, turn) {
    return new Promise(function (resolve, reject) {
      var umap = new UMAP.UMAP({nComponents: 2, nNeighbors: Math.min(15, points.length - 1),
                                minDist: 0.1, random: seeded(1)});
      var epochs = umap.initializeFit(points);
      (function slice() {
        if (turn !== umapTurn) return resolve(null);
        try {
          var until = Date.now() + 40, epoch;
          do { epoch = umap.step(); } while (epoch < epochs && Date.now() < until);
          if (epoch < epochs) return setTimeout(slice, 0);
          resolve(umap.getEmbedding());
        } catch (e) {
          reject(e);
        }
      })();
    });
  }

  function drawUmap(index) {
    var view = data.distributions[index], turn = ++umapTurn;
    var points = view.real.concat(view.generated);
    if (umapView) { umapView.finalize(); umapView = null; }
    umapEl.removeAttribute('data-marks');
    umapEl.removeAttribute('data-drawn');
    umapEl.setAttribute('data-points', String(points.length));
    umapEl.setAttribute('data-state', 'pending');
    if (points.length < 3) {
      umapEl.setAttribute('data-state', 'empty');
      umapEl.textContent = 'too few points for a UMAP';
      return Promise.resolve();
    }
    umapEl.textContent = 'computing the UMAP of ' + points.length + ' points\u2026';
    return embed(points, turn).then(function (xy) {
      if (!xy) return;
      var values = xy.map(function (p, i) {
        var real = i < view.real.length;
        var v = {x: p[0], y: p[1], set: real ? 'real' : 'generated', row: real ? i : i - view.real.length};
        if (real && view.labels) v['class'] = view.labels[i];
        return v;
      });
      var tooltip = [{field: 'set', title: 'points'}, {field: 'row', type: 'quantitative'}];
      if (view.labels) tooltip.push({field: 'class', type: 'nominal'});
      var subtitle = view.real.length + ' test images (grey), ' + view.generated.length + ' samples (blue)' +
                     (view.dropped ? ', ' + view.dropped + ' rows left out (not finite)' : '') +
                     ', from ' + view.components + ' principal components';
      umapEl.textContent = '';
      return render(umapEl, {
        height: 420,
        title: {text: subtitle, anchor: 'start', fontSize: 12, fontWeight: 'normal', color: '#5f6b7a'},
        data: {values: values},
        mark: {type: 'circle', size: 26, opacity: 0.8},
        encoding: {
          x: {field: 'x', type: 'quantitative', title: 'UMAP 1', scale: {zero: false}, axis: {labels: false, ticks: false}},
          y: {field: 'y', type: 'quantitative', title: 'UMAP 2', scale: {zero: false}, axis: {labels: false, ticks: false}},
          color: {field: 'set', type: 'nominal', title: null,
                  scale: {domain: ['real', 'generated'], range: ['#9aa4af', '#1f77b4']}},
          tooltip: tooltip
        }
      }).then(function (r) {
        // The points drawn (data-marks also counts the legend's symbols).
        umapEl.setAttribute('data-drawn', String(umapEl.querySelectorAll('.mark-symbol.role-mark path').length));
        if (turn === umapTurn) umapView = r || null; else if (r) r.finalize();
      });
    }).catch(function (e) {
      umapEl.setAttribute('data-state', 'error');
      window.__difflabErrors.push('UMAP: ' + (e && e.message ? e.message : e));
    });
  }

  var umapEl = document.getElementById('umap-view');
  if (umapEl && data.distributions.length) {
    if (typeof UMAP === 'undefined' || typeof UMAP.UMAP !== 'function') {
      umapEl.className += ' unavailable';
      umapEl.setAttribute('data-state', 'unavailable');
      umapEl.textContent = 'UMAP unavailable: the umap-js bundle was not found when this report was written.';
    } else {
      var select = document.getElementById('umap-select');
      jobs.push(drawUmap(0));
      select.addEventListener('change', function () { drawUmap(Number(select.value)); });
    }
  }
  Promise.all(jobs).then(finish, finish);
})();
