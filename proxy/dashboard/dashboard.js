/* The mtps-proxy dashboard: polls /stats each second and draws the last few minutes as
 * plain SVG polylines. Rates come from the differences between two polls. */
'use strict';

const HISTORY = 120;		/* points kept per series: two minutes */
const history = { rps: [], hit: [], p50: [], p95: [], p99: [], errors: [], bytes: [] };
let last = null;
let polls = 0;
let token = '';

window.onerror = function (msg, src, line) {
	document.getElementById('errors').textContent += msg + ' (' + src + ':' + line + ')\n';
};

(function readToken() {
	const m = /token=([^&]*)/.exec(location.hash);
	if (m) {
		token = decodeURIComponent(m[1]);
	} else {
		try { token = sessionStorage.getItem('mtps-token') || ''; } catch (e) { token = ''; }
	}
})();

document.getElementById('login').addEventListener('submit', function (ev) {
	ev.preventDefault();
	token = document.getElementById('token').value;
	try { sessionStorage.setItem('mtps-token', token); } catch (e) { /* private mode */ }
	this.hidden = true;
	poll();
});

function push(name, v) {
	const a = history[name];
	a.push(v);
	if (a.length > HISTORY)
		a.shift();
}

function human(v, unit) {
	const steps = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
	for (const [n, p] of steps)
		if (Math.abs(v) >= n)
			return (v / n).toFixed(1) + ' ' + p + unit;
	return (Math.round(v * 100) / 100) + (unit ? ' ' + unit : '');
}

function ms(seconds) {
	return (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1) + ' ms';
}

const SVG = 'http://www.w3.org/2000/svg';

function el(name, attrs, parent) {
	const e = document.createElementNS(SVG, name);
	for (const k in attrs)
		e.setAttribute(k, attrs[k]);
	if (parent)
		parent.appendChild(e);
	return e;
}

/* Draws <series> ([{data, color}]) into the svg <id>, scaled to the largest value (or <max>);
 * <fmt> labels the axis. */
function chart(id, series, fmt, max) {
	const svg = document.getElementById(id);
	const W = 320, H = 120, L = 44, T = 6, B = 14;
	let top = max || 0;
	if (!max)
		for (const s of series)
			for (const v of s.data)
				top = Math.max(top, v);
	if (top <= 0)
		top = 1;
	while (svg.firstChild)
		svg.removeChild(svg.firstChild);
	for (const f of [0, 0.5, 1]) {
		const y = T + (H - T - B) * (1 - f);
		el('line', { x1: L, x2: W, y1: y, y2: y, class: 'grid' }, svg);
		el('text', { x: L - 4, y: y + 3, 'text-anchor': 'end' }, svg).textContent = fmt(top * f);
	}
	el('text', { x: L, y: H - 2 }, svg).textContent = '-' + HISTORY + ' s';
	el('text', { x: W, y: H - 2, 'text-anchor': 'end' }, svg).textContent = 'now';
	let points = 0;
	for (const s of series) {
		const n = s.data.length;
		const pts = s.data.map(function (v, i) {
			const x = L + (W - L) * (HISTORY - n + i) / (HISTORY - 1);
			const y = T + (H - T - B) * (1 - Math.min(v, top) / top);
			return x.toFixed(1) + ',' + y.toFixed(1);
		});
		points += n;
		el('polyline', { points: pts.join(' '), stroke: s.color }, svg);
	}
	svg.setAttribute('data-points', points);
}

function text(tag, content, cls) {
	const e = document.createElement(tag);
	e.textContent = content;
	if (cls)
		e.className = cls;
	return e;
}

function drawBackends(stats) {
	const body = document.querySelector('#backends tbody');
	body.textContent = '';
	for (const b of stats.backends) {
		const tr = document.createElement('tr');
		tr.appendChild(text('td', b.name));
		tr.appendChild(text('td', b.state, 'state state-' + b.state));
		tr.appendChild(text('td', b.effective_weight + ' / ' + b.weight));
		tr.appendChild(text('td', b.in_flight));
		tr.appendChild(text('td', b.requests));
		tr.appendChild(text('td', b.errors));
		tr.appendChild(text('td', b.latency ? ms(b.latency.p50) : '-'));
		tr.appendChild(text('td', b.latency ? ms(b.latency.p99) : '-'));
		body.appendChild(tr);
	}
	const ul = document.getElementById('events');
	ul.textContent = '';
	for (const e of stats.events.slice(0, 8))
		ul.appendChild(text('li', new Date(e.time * 1000).toLocaleTimeString() + ' ' +
				    e.backend + ' ' + e.state + ': ' + e.reason));
}

function drawCache(stats) {
	const dl = document.getElementById('cache');
	const c = stats.cache;
	const rows = [
		['stored', c.objects + ' responses'],
		['bytes', human(c.bytes, 'B') + ' of ' + human(c.capacity, 'B')],
		['evictions', c.evictions],
		['connections', stats.connections.open + ' open, ' + stats.connections.total + ' total'],
		['in flight', stats.requests.in_flight],
	];
	dl.textContent = '';
	for (const [k, v] of rows) {
		dl.appendChild(text('dt', k));
		dl.appendChild(text('dd', v));
	}
}

function update(stats) {
	if (last) {
		const dt = Math.max(stats.uptime - last.uptime, 0.001);
		const d = function (f) { return Math.max(f(stats) - f(last), 0); };
		const total = d(function (s) { return s.requests.total; });
		const hits = d(function (s) { return s.requests.by_cache.HIT; });
		const cached = hits + d(function (s) {
			const c = s.requests.by_cache;
			return c.MISS + c.STALE + c.REVALIDATED;
		});
		push('rps', total / dt);
		push('hit', cached ? hits / cached : 0);
		push('errors', total ? d(function (s) { return s.requests.by_status['5xx']; }) / total : 0);
		push('bytes', d(function (s) { return s.bytes.sent; }) / dt);
		const r = stats.latency.client_recent || stats.latency.client;
		push('p50', r.p50);
		push('p95', r.p95);
		push('p99', r.p99);
		const pct = function (v) { return Math.round(v * 100) + ' %'; };
		chart('chart-rps', [{ data: history.rps, color: '#1d3557' }], function (v) { return human(v, ''); });
		chart('chart-hit', [{ data: history.hit, color: '#2a9d8f' }], pct, 1);
		chart('chart-latency', [
			{ data: history.p50, color: '#2a9d8f' },
			{ data: history.p95, color: '#e9c46a' },
			{ data: history.p99, color: '#e76f51' },
		], ms);
		chart('chart-errors', [{ data: history.errors, color: '#c0392b' }], pct);
		chart('chart-bytes', [{ data: history.bytes, color: '#457b9d' }], function (v) { return human(v, 'B'); });
	}
	drawBackends(stats);
	drawCache(stats);
	document.getElementById('summary').textContent = 'mtps ' + stats.version + ', up ' +
		Math.floor(stats.uptime) + ' s, ' + stats.requests.total + ' requests';
	last = stats;
	polls++;
	document.body.setAttribute('data-polls', polls);
}

function poll() {
	const headers = token ? { Authorization: 'Bearer ' + token } : {};
	fetch('/stats', { headers: headers, cache: 'no-store' }).then(function (r) {
		if (r.status === 401) {
			document.getElementById('login').hidden = false;
			document.getElementById('summary').textContent = 'this admin listener needs a token';
			return null;
		}
		if (!r.ok)
			throw new Error('/stats answered ' + r.status);
		return r.json();
	}).then(function (stats) {
		if (stats)
			update(stats);
	}).catch(function (e) {
		document.getElementById('summary').textContent = 'cannot reach the proxy: ' + e.message;
	});
}

poll();
setInterval(poll, 1000);
