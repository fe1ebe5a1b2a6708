// Outpost dashboard: keeps a server-rendered page fresh. The page's <body> carries
// data-version (a fingerprint of its data), data-stream (the URL of its Server-Sent
// Events stream) and data-poll-ms (the fallback polling period). On a "changed"
// event whose fingerprint differs, the page is fetched again and its <main> swapped
// in place; without EventSource, or when the stream is refused, the page polls.
// No inline script, no other origin: the Content-Security-Policy forbids both.
(function () {
  'use strict';

  document.documentElement.setAttribute('data-js', 'on');

  var body = document.body;
  var live = document.getElementById('live');
  var version = body.getAttribute('data-version') || '';
  var stream = body.getAttribute('data-stream') || '';
  var pollMs = parseInt(body.getAttribute('data-poll-ms'), 10) || 0;
  var busy = false;
  var again = false;
  var pollTimer = null;

  function setLive(state, text, title) {
    if (!live) { return; }
    live.setAttribute('data-state', state);
    live.textContent = text;
    live.title = title || '';
  }

  // rel formats like the server's ago().
  function rel(t) {
    var s = Math.floor((Date.now() - t) / 1000);
    if (s < 2) { return 'just now'; }
    if (s < 60) { return s + 's ago'; }
    if (s < 3600) { return Math.floor(s / 60) + 'm ago'; }
    if (s < 172800) { return Math.floor(s / 3600) + 'h ago'; }
    return Math.floor(s / 86400) + 'd ago';
  }

  function updateTimes() {
    var els = document.querySelectorAll('time[data-rel]');
    for (var i = 0; i < els.length; i++) {
      var t = Date.parse(els[i].getAttribute('datetime'));
      if (!isNaN(t)) { els[i].textContent = rel(t); }
    }
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { headers: { 'Accept': 'text/html' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (r.status === 404) { location.reload(); return null; }
        if (!r.ok) { throw new Error('the hub answered HTTP ' + r.status); }
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.getElementById('main');
        var v = doc.body.getAttribute('data-version') || '';
        if (version === '' && v !== '') { location.reload(); return; } // recovered from an error page
        if (next && v !== version) {
          document.getElementById('main').replaceWith(document.adoptNode(next));
          version = v;
          body.setAttribute('data-version', v);
          document.title = doc.title;
        }
        if (pollTimer !== null) { setLive('poll', 'Polling', 'Refreshes every ' + pollMs / 1000 + ' s'); }
      })
      .catch(function (e) { setLive('error', 'Hub unreachable', String(e)); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function startPolling(reason) {
    if (pollTimer !== null || pollMs <= 0) { return; }
    setLive('poll', 'Polling', reason + '; refreshes every ' + pollMs / 1000 + ' s');
    pollTimer = setInterval(refresh, pollMs);
  }

  function startStream() {
    if (typeof window.EventSource !== 'function') { startPolling('No EventSource in this browser'); return; }
    var url = stream + (stream.indexOf('?') < 0 ? '?' : '&') + 'since=' + encodeURIComponent(version);
    var es = new EventSource(url);
    setLive('connecting', 'Connecting…', 'Opening the live update stream');
    es.addEventListener('open', function () { setLive('live', 'Live', 'Updates as soon as the hub\'s data changes'); });
    es.addEventListener('changed', function (e) { if (e.data !== version) { refresh(); } });
    es.addEventListener('error', function () {
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        startPolling('The live update stream was refused');
      } else {
        setLive('connecting', 'Reconnecting…', 'The live update stream was interrupted');
      }
    });
  }

  // left formats the time left of a soak like the server's leftText().
  function left(ms) {
    var s = Math.floor(ms / 1000);
    if (s <= 0) { return 'verifying…'; }
    function two(n) { return (n < 10 ? '0' : '') + n; }
    if (s >= 3600) { return Math.floor(s / 3600) + 'h' + two(Math.floor(s / 60) % 60) + 'm' + two(s % 60) + 's left'; }
    if (s >= 60) { return Math.floor(s / 60) + 'm' + two(s % 60) + 's left'; }
    return s + 's left';
  }

  // updateSoaks counts down the soak of each soaking cluster of a rollout page.
  function updateSoaks() {
    var els = document.querySelectorAll('[data-soak-end]');
    for (var i = 0; i < els.length; i++) {
      var t = Date.parse(els[i].getAttribute('data-soak-end'));
      if (!isNaN(t)) { els[i].textContent = left(t - Date.now()); }
    }
  }

  if (stream !== '') {
    startStream();
  } else if (pollMs > 0) {
    startPolling('This page retries by itself');
  }
  updateTimes();
  setInterval(updateTimes, 10000);
  updateSoaks();
  setInterval(updateSoaks, 1000);
}());
