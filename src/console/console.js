/*
 * agent_tasks console: a single-page client of the public REST API, served by
 * PostgREST from the extension (GET /rpc/console).  Plain JavaScript, no
 * dependency.  Every string from the database reaches the page as a text
 * node (h() below, textContent): no HTML is ever parsed from data, and the
 * page's Content-Security-Policy (require-trusted-types-for) makes any
 * attempt throw.
 */
'use strict';

(function () {
	// The API is where the page was served from: .../rpc/console -> .../
	const API = location.pathname.replace(/rpc\/console\/?$/, '');
	const AUTH_KEY = 'agent_tasks.console.auth';
	const DEVICE_KEY = 'agent_tasks.console.device';
	const STATUSES = ['pending', 'queued', 'in_progress', 'needs_clarification', 'on_hold',
		'completed', 'failed', 'cancelled'];
	const TERMINAL = ['completed', 'failed', 'cancelled'];
	const PAGE_SIZE = 25;

	let auth = readAuth();
	let me = null;			// whoami(): account, email, role, key_name, scopes
	let viewCleanup = [];	// timers and handlers of the current view

	/* ---- DOM ------------------------------------------------------------- */

	// h('tag', {attrs}, children...): strings and numbers become text nodes.
	function h(tag, attrs, ...children) {
		const el = tag.startsWith('svg:')
			? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
			: document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === null || v === undefined || v === false) continue;
			if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
			else if (k === 'class') el.setAttribute('class', v);
			else if (k === 'value') el.value = v;
			else if (k === 'checked') el.checked = true;
			else el.setAttribute(k, v === true ? '' : String(v));
		}
		append(el, children);
		return el;
	}
	function append(el, children) {
		for (const c of children.flat(Infinity)) {
			if (c === null || c === undefined || c === false) continue;
			el.append(c instanceof Node ? c : document.createTextNode(String(c)));
		}
		return el;
	}
	function replace(el, ...children) {
		el.replaceChildren();
		return append(el, children);
	}
	const $ = (sel, root) => (root || document).querySelector(sel);

	function toast(text) {
		const t = $('#toast');
		t.textContent = text;
		clearTimeout(toast.timer);
		toast.timer = setTimeout(() => { t.textContent = ''; }, 4000);
	}

	/* ---- formatting ------------------------------------------------------ */

	// Dates in the viewer's time zone and locale.
	function when(ts) {
		if (!ts) return '';
		const d = new Date(ts);
		return isNaN(d) ? String(ts) : d.toLocaleString();
	}
	function timeEl(ts) {
		return ts ? h('time', { datetime: ts, title: ts }, when(ts)) : '';
	}
	function seconds(a, b) {
		if (!a || !b) return '';
		const s = (new Date(b) - new Date(a)) / 1000;
		return s < 60 ? s.toFixed(1) + ' s' : (s / 60).toFixed(1) + ' min';
	}
	function badge(status) {
		return h('span', { class: 'badge s-' + status }, String(status || '').replace('_', ' '));
	}
	function list(a) {
		return Array.isArray(a) && a.length ? a.join(', ') : '';
	}
	function splitList(text) {
		return text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
	}

	// JSON, pretty; folded in a <details> when long.  Open folds stay open
	// across refreshes (their key is remembered).
	const openFolds = new Set();
	function json(value, key) {
		if (value === null || value === undefined) return h('span', { class: 'muted' }, '—');
		const text = JSON.stringify(value, null, 2);
		const lines = text.split('\n').length;
		if (lines <= 8 && text.length <= 400) return h('pre', {}, text);
		const details = h('details', { open: openFolds.has(key) },
			h('summary', {}, `${Array.isArray(value) ? 'array' : typeof value}, ${lines} lines`),
			h('pre', {}, text));
		details.addEventListener('toggle', () => {
			if (details.open) openFolds.add(key); else openFolds.delete(key);
		});
		return details;
	}

	// The API's refusal as the API said it: message, detail, hint.
	function errorBox(err) {
		const e = err instanceof ApiError ? err : { message: String(err && err.message || err) };
		return h('div', { class: 'error', role: 'alert' },
			h('div', { class: 'err-message' }, e.message || 'request failed',
				e.status ? h('span', { class: 'muted small' }, ` (HTTP ${e.status}${e.code ? ', ' + e.code : ''})`) : ''),
			e.details ? h('div', { class: 'err-detail' }, e.details) : '',
			e.hint ? h('div', { class: 'err-hint' }, e.hint) : '');
	}

	/* ---- the API --------------------------------------------------------- */

	class ApiError extends Error {
		constructor(status, body) {
			super((body && body.message) || `HTTP ${status}`);
			this.status = status;
			this.code = body && body.code;
			this.details = body && body.details;
			this.hint = body && body.hint;
		}
	}

	function readAuth() {
		try { return JSON.parse(sessionStorage.getItem(AUTH_KEY)); } catch (e) { return null; }
	}

	function authHeaders() {
		if (!auth) return {};
		// PostgREST parses every bearer token as a JWT: keys go in X-Api-Key.
		return auth.kind === 'key' ? { 'X-Api-Key': auth.token } : { Authorization: 'Bearer ' + auth.token };
	}

	async function request(method, path, { params, body, headers } = {}) {
		const url = new URL(API + path, location.origin);
		for (const [k, v] of Object.entries(params || {})) {
			if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
		}
		const init = { method, headers: Object.assign({ Accept: 'application/json' }, authHeaders(), headers) };
		if (body !== undefined) {
			init.headers['Content-Type'] = 'application/json';
			init.body = JSON.stringify(body);
		}
		let res;
		try {
			res = await fetch(url, init);
		} catch (e) {
			throw new ApiError(0, { message: 'the API cannot be reached', details: String(e.message || e) });
		}
		if (!res.ok) {
			let b = null;
			try { b = await res.json(); } catch (e) { b = { message: res.statusText }; }
			const err = new ApiError(res.status, b);
			if (res.status === 401 && me) signedOut(err);
			throw err;
		}
		return res;
	}

	// The key was revoked or expired (or the JWT expired) while in use: back
	// to the sign-in form, saying why.
	function signedOut(err) {
		sessionStorage.removeItem(AUTH_KEY);
		auth = null;
		me = null;
		viewCleanup.forEach((f) => f());
		viewCleanup = [];
		showChrome();
		viewSignIn($('#main'), err);
	}
	async function getJSON(path, params) {
		return (await request('GET', path, { params })).json();
	}
	async function rpc(fn, args) {
		const res = await request('POST', 'rpc/' + fn, { body: args || {} });
		const text = await res.text();
		return text ? JSON.parse(text) : null;
	}

	const can = (scope) => !!(me && me.scopes && me.scopes.includes(scope));

	/* ---- views and polling ----------------------------------------------- */

	// Call fn now and then every ms while the view is shown (and the tab is
	// visible); a slow answer delays the next call instead of piling up.
	// now() asks for a call at once: after the one running, if any, so that
	// there is never more than one call in flight.
	function poll(ms, fn) {
		let timer = null;
		let stopped = false;
		let running = false;
		let again = false;
		const tick = async () => {
			if (stopped) return;
			running = true;
			if (!document.hidden) {
				try { await fn(); } catch (e) { /* shown by fn itself */ }
			}
			running = false;
			if (stopped) return;
			if (again) {
				again = false;
				tick();
			} else {
				timer = setTimeout(tick, ms);
			}
		};
		tick();
		const handle = {
			stop() { stopped = true; clearTimeout(timer); },
			now() {
				if (running) { again = true; return; }
				clearTimeout(timer);
				tick();
			},
		};
		viewCleanup.push(() => handle.stop());
		return handle;
	}

	// Replace a region's content only when its data changed, so that
	// refreshing keeps focus, selection and scrolling.  A focused element
	// with data-key gets the focus back after a change.
	function region(el, data, render) {
		const sig = JSON.stringify(data);
		if (el.dataset.sig === sig) return false;
		const focused = document.activeElement && el.contains(document.activeElement)
			? document.activeElement.getAttribute('data-key') : null;
		el.dataset.sig = sig;
		replace(el, render(data));
		if (focused) {
			const again = el.querySelector(`[data-key="${CSS.escape(focused)}"]`);
			if (again) again.focus();
		}
		return true;
	}

	// A button that calls the API, shows its refusal in `errors` and then
	// refreshes.
	function actionButton(label, call, { errors, after, cls, key, confirmText, pressed } = {}) {
		const b = h('button', { type: 'button', class: cls, 'data-key': key || label,
			'aria-pressed': pressed === undefined ? null : String(pressed) }, label);
		b.addEventListener('click', async () => {
			if (confirmText && !window.confirm(confirmText)) return;
			b.disabled = true;
			if (errors) errors.replaceChildren();
			try {
				await call();
				toast(label + ': done');
				if (after) await after();
			} catch (e) {
				if (errors) errors.append(errorBox(e)); else toast(e.message);
			} finally {
				b.disabled = false;
			}
		});
		return b;
	}

	/* ---- sign in --------------------------------------------------------- */

	function viewSignIn(main, problem) {
		const token = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true,
			spellcheck: 'false', size: 50, 'aria-describedby': 'token-help' });
		const errors = h('div', {});
		if (problem) errors.append(errorBox(problem));
		const form = h('form', { class: 'form panel', 'aria-labelledby': 'signin-title' },
			h('h1', { id: 'signin-title' }, 'Sign in'),
			h('label', {}, 'API key or JWT', token),
			h('p', { id: 'token-help', class: 'muted small' },
				'An API key (from agent_tasks.create_api_key: a JWT, or at_… when the extension has no JWT secret) or a JWT signed with PostgREST\'s jwt-secret. ' +
				'It is kept in this browser tab only (sessionStorage) and sent to this server\'s API with each request.'),
			errors,
			h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Sign in')));
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			const value = token.value.trim();
			auth = { kind: value.startsWith('at_') ? 'key' : 'jwt', token: value };
			errors.replaceChildren();
			try {
				me = await getJSON('rpc/whoami');
			} catch (e) {
				auth = null;
				errors.append(errorBox(e));
				return;
			}
			sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
			showChrome();
			if (!location.hash || location.hash === '#/signin') location.hash = '#/tasks'; else route();
		});
		replace(main, form);
		token.focus();
	}

	function signOut() {
		sessionStorage.removeItem(AUTH_KEY);
		auth = null;
		me = null;
		showChrome();
		location.hash = '#/signin';
	}

	function showChrome() {
		$('#nav').hidden = !me;
		$('#signout').hidden = !me;
		$('#nav-admin').hidden = !can('admin');
		$('#nav-new').hidden = !can('task:write');
		replace($('#who'), me
			? [me.account, me.email ? ' · ' + me.email : '', me.key_name ? ' · key ' + me.key_name : '',
				' · ', (me.scopes || []).join(', ')]
			: []);
	}

	/* ---- Tasks ----------------------------------------------------------- */

	function viewTasks(main, query) {
		const f = {
			status: query.get('status') || '', agent: query.get('agent') || '', assignee: query.get('assignee') || '',
			mine: query.get('mine') === 'true', archived: query.get('archived') || 'false',
			search: query.get('search') || '', offset: Math.max(0, parseInt(query.get('offset') || '0', 10) || 0),
		};
		const keepInUrl = () => {
			const q = new URLSearchParams();
			for (const [k, v] of Object.entries(f)) {
				if (v && !(k === 'archived' && v === 'false') && !(k === 'offset' && v === 0)) q.set(k, v);
			}
			history.replaceState(null, '', '#/tasks' + (q.toString() ? '?' + q : ''));
		};

		const statusSel = h('select', { id: 'f-status' }, h('option', { value: '' }, 'any'),
			STATUSES.map((s) => h('option', { value: s }, s.replace('_', ' '))));
		statusSel.value = f.status;
		const agentSel = h('select', { id: 'f-agent' }, h('option', { value: '' }, 'any'));
		const assignee = h('input', { id: 'f-assignee', type: 'search', placeholder: 'e-mail', value: f.assignee });
		const mine = h('input', { id: 'f-mine', type: 'checkbox', checked: f.mine });
		const archived = h('select', { id: 'f-archived' }, h('option', { value: 'false' }, 'not archived'),
			h('option', { value: 'true' }, 'archived'), h('option', { value: 'all' }, 'all'));
		archived.value = f.archived;
		const search = h('input', { id: 'f-search', type: 'search', placeholder: 'words in title or prompt', value: f.search });

		const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Tasks per status' });
		const errors = h('div', {});
		const table = h('tbody', { id: 'task-rows' });
		const pager = h('div', { class: 'pager' });

		replace(main,
			h('h1', {}, 'Tasks'),
			h('form', { class: 'filters panel', role: 'search', onsubmit: (e) => e.preventDefault() },
				h('label', {}, 'Status', statusSel), h('label', {}, 'Agent', agentSel),
				h('label', {}, 'Assignee', assignee), h('label', {}, 'Archived', archived),
				h('label', {}, 'Search', search), h('label', { class: 'inline' }, mine, 'Mine')),
			chips, errors,
			h('div', { class: 'table-wrap' }, h('table', { class: 'cards' },
				h('thead', {}, h('tr', {}, ['Title', 'Status', 'Agent', 'Owner', 'Assignees', 'Updated', 'Created']
					.map((c) => h('th', { scope: 'col' }, c)))),
				table)),
			pager);

		const filterArgs = () => ({
			agent: f.agent || null, assignee: f.assignee || null, mine: f.mine, archived: f.archived,
			search: f.search || null,
		});
		async function refresh() {
			let page, counts;
			try {
				[page, counts] = await Promise.all([
					rpc('list_tasks', Object.assign(filterArgs(), { status: f.status || null, page_size: PAGE_SIZE, page_offset: f.offset })),
					rpc('count_tasks', filterArgs())]);
			} catch (e) {
				replace(errors, errorBox(e));
				return;
			}
			errors.replaceChildren();
			region(chips, { counts, status: f.status }, () => {
				const total = Object.values(counts).reduce((a, b) => a + b, 0);
				return [{ s: '', label: 'all', n: total }].concat(STATUSES.map((s) => ({ s, label: s.replace('_', ' '), n: counts[s] })))
					.map((c) => h('button', { type: 'button', 'data-key': 'chip-' + c.s, 'aria-pressed': String(f.status === c.s),
						onclick: () => { f.status = c.s; statusSel.value = c.s; f.offset = 0; changed(); } },
					c.label, h('span', { class: 'n' }, c.n)));
			});
			region(table, page.results, (rows) => rows.length ? rows.map((t) => h('tr', {},
				h('td', { 'data-label': 'Title' }, h('a', { href: '#/task/' + t.id, 'data-key': t.id }, t.title)),
				h('td', { 'data-label': 'Status' }, badge(t.status), t.archived ? h('span', { class: 'muted small' }, ' archived') : ''),
				h('td', { 'data-label': 'Agent' }, t.agent || ''),
				h('td', { 'data-label': 'Owner' }, t.owner || ''),
				h('td', { 'data-label': 'Assignees' }, list(t.assignees)),
				h('td', { 'data-label': 'Updated' }, timeEl(t.updated_at)),
				h('td', { 'data-label': 'Created' }, timeEl(t.created_at))))
				: h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No tasks.')));
			region(pager, { count: page.count, offset: f.offset }, () => {
				const last = Math.min(page.count, f.offset + PAGE_SIZE);
				return [
					h('span', { class: 'muted', 'aria-live': 'polite' },
						page.count ? `${f.offset + 1}–${last} of ${page.count}` : '0 tasks'),
					h('button', { type: 'button', 'data-key': 'prev', disabled: f.offset === 0,
						onclick: () => { f.offset = Math.max(0, f.offset - PAGE_SIZE); changed(); } }, 'Previous'),
					h('button', { type: 'button', 'data-key': 'next', disabled: last >= page.count,
						onclick: () => { f.offset += PAGE_SIZE; changed(); } }, 'Next'),
				];
			});
		}
		const poller = poll(2000, refresh);
		function changed() {
			keepInUrl();
			poller.now();
		}
		let typing = null;
		const onText = (el, key) => el.addEventListener('input', () => {
			clearTimeout(typing);
			typing = setTimeout(() => { f[key] = el.value.trim(); f.offset = 0; changed(); }, 300);
		});
		onText(assignee, 'assignee');
		onText(search, 'search');
		statusSel.addEventListener('change', () => { f.status = statusSel.value; f.offset = 0; changed(); });
		agentSel.addEventListener('change', () => { f.agent = agentSel.value; f.offset = 0; changed(); });
		archived.addEventListener('change', () => { f.archived = archived.value; f.offset = 0; changed(); });
		mine.addEventListener('change', () => { f.mine = mine.checked; f.offset = 0; changed(); });
		getJSON('agents', { select: 'name', order: 'name' }).then((agents) => {
			append(agentSel, agents.map((a) => h('option', { value: a.name }, a.name)));
			agentSel.value = f.agent;
		}, (e) => errors.append(errorBox(e)));
	}

	/* ---- a task ---------------------------------------------------------- */

	function deviceId() {
		let id = sessionStorage.getItem(DEVICE_KEY);
		if (!id) {
			id = 'console-' + crypto.getRandomValues(new Uint32Array(2)).join('');
			sessionStorage.setItem(DEVICE_KEY, id);
		}
		return id;
	}

	function viewTask(main, id) {
		const R = {};
		for (const k of ['head', 'live', 'actions', 'question', 'conversation', 'details', 'output', 'runs',
			'timeline', 'artifacts', 'family', 'people', 'watchers']) {
			R[k] = h('div', { id: 'task-' + k });
		}
		const actionErrors = h('div', { id: 'action-errors', 'aria-live': 'assertive' });
		const loadErrors = h('div', {});
		const messageButtons = h('div', { class: 'actions' });
		const message = h('textarea', { id: 'message', rows: 3, 'aria-label': 'Message' });
		const assignees = h('input', { id: 'assignees', type: 'text', size: 40, 'aria-label': 'Assignees (e-mails)' });
		const followers = h('input', { id: 'followers', type: 'text', size: 40, 'aria-label': 'Followers to add (e-mails)' });
		let task = null;
		let assigneesTouched = false;
		assignees.addEventListener('input', () => { assigneesTouched = true; });

		const writer = can('task:write');
		replace(main,
			h('p', {}, h('a', { href: '#/tasks' }, '← Tasks')),
			loadErrors,
			R.head,
			R.live,
			writer ? h('section', { class: 'panel', 'aria-labelledby': 'actions-title' },
				h('h2', { id: 'actions-title' }, 'Actions'), R.actions, actionErrors) : '',
			R.question,
			h('div', { class: 'grid2' },
				h('div', {},
					h('section', { class: 'panel', 'aria-labelledby': 'conv-title' },
						h('h2', { id: 'conv-title' }, 'Conversation'), R.conversation,
						writer ? h('div', { class: 'form', id: 'message-form' }, message, messageButtons) : ''),
					h('section', { class: 'panel', 'aria-labelledby': 'out-title' }, h('h2', { id: 'out-title' }, 'Output'), R.output),
					h('section', { class: 'panel', 'aria-labelledby': 'runs-title' }, h('h2', { id: 'runs-title' }, 'Runs'), R.runs),
					h('section', { class: 'panel', 'aria-labelledby': 'tl-title' }, h('h2', { id: 'tl-title' }, 'Activity'), R.timeline)),
				h('div', {},
					h('section', { class: 'panel', 'aria-labelledby': 'det-title' }, h('h2', { id: 'det-title' }, 'Details'), R.details),
					h('section', { class: 'panel', 'aria-labelledby': 'ppl-title' }, h('h2', { id: 'ppl-title' }, 'People'), R.people,
						writer ? h('div', { class: 'form' },
							h('div', { class: 'row' }, assignees, actionButton('Set assignees',
								() => rpc('set_assignees', { task: id, emails: splitList(assignees.value) }),
								{ errors: actionErrors, after: () => { assigneesTouched = false; return refresh(); } })),
							h('div', { class: 'row' }, followers, actionButton('Add followers',
								async () => { await rpc('add_followers', { task: id, emails: splitList(followers.value) }); followers.value = ''; },
								{ errors: actionErrors, after: () => refresh() }))) : '',
						h('h3', {}, 'Watching now'), R.watchers),
					h('section', { class: 'panel', 'aria-labelledby': 'art-title' }, h('h2', { id: 'art-title' }, 'Artifacts'), R.artifacts),
					h('section', { class: 'panel', 'aria-labelledby': 'fam-title' }, h('h2', { id: 'fam-title' }, 'Children and dependencies'), R.family))));

		const call = (fn, args) => () => rpc(fn, Object.assign({ task: id }, args || {}));
		const opts = (extra) => Object.assign({ errors: actionErrors, after: () => refresh() }, extra);
		const sendWith = (fn, label) => actionButton(label, async () => {
			const body = message.value.trim();
			if (fn === 'send_message') await rpc('send_message', { task: id, body });
			else await rpc('process_task', { task: id, message: body || null });
			message.value = '';
		}, opts({ cls: 'primary', key: 'msg-' + fn }));

		function renderActions(t) {
			const s = t.status;
			const b = [];
			if (s === 'pending') b.push(actionButton('Process', call('process_task'), opts({ cls: 'primary' })));
			if (s === 'on_hold') b.push(actionButton('Resume', call('process_task'), opts({ cls: 'primary' })));
			if (['queued', 'in_progress', 'needs_clarification'].includes(s)) b.push(actionButton('Stop', call('stop_task'), opts()));
			if (TERMINAL.includes(s)) b.push(actionButton('Retry', call('retry_task'), opts()));
			if (!TERMINAL.includes(s)) {
				b.push(actionButton('Cancel', call('cancel_task'), opts({ cls: 'danger', confirmText: 'Cancel this task?' })));
			}
			b.push(t.archived ? actionButton('Unarchive', call('unarchive_task'), opts())
				: actionButton('Archive', call('archive_task'), opts()));
			if (TERMINAL.includes(s)) {
				b.push(actionButton('Like', call('send_feedback', { feedback: t.feedback === 'like' ? null : 'like' }),
					opts({ pressed: t.feedback === 'like' })));
				b.push(actionButton('Dislike', call('send_feedback', { feedback: t.feedback === 'dislike' ? null : 'dislike' }),
					opts({ pressed: t.feedback === 'dislike' })));
			}
			return h('div', { class: 'actions' }, b);
		}

		function renderMessageButtons(s) {
			if (s === 'needs_clarification') return sendWith('send_message', 'Answer');
			if (['queued', 'in_progress'].includes(s)) return sendWith('send_message', 'Send message');
			if (s === 'pending') return sendWith('process_task', 'Process with message');
			if (s === 'on_hold') return sendWith('process_task', 'Resume with message');
			return sendWith('process_task', 'Follow up');
		}

		async function download(a) {
			const res = await request('GET', 'rpc/fetch_artifact', { params: { artifact: a.id }, headers: { Accept: '*/*' } });
			const url = URL.createObjectURL(await res.blob());
			const link = h('a', { href: url, download: a.name });
			document.body.append(link);
			link.click();
			link.remove();
			setTimeout(() => URL.revokeObjectURL(url), 10000);
		}

		async function refresh() {
			const q = { task_id: 'eq.' + id };
			let t, runs, messages, activities, artifacts, children, deps;
			try {
				[t, runs, messages, activities, artifacts, children, deps] = await Promise.all([
					getJSON('tasks', { id: 'eq.' + id, select: '*' }),
					getJSON('runs', Object.assign({ order: 'id', select: 'id,attempt,status,status_reason,agent,phase,progress,progress_data,worker,queued_at,started_at,ended_at,heartbeat_at,tokens,cost,usage,error' }, q)),
					getJSON('messages', Object.assign({ order: 'id' }, q)),
					getJSON('activities', Object.assign({ order: 'id.desc', limit: 200 }, q)),
					getJSON('artifacts', Object.assign({ order: 'id' }, q)),
					getJSON('tasks', { parent_id: 'eq.' + id, select: 'id,title,status', order: 'id' }),
					getJSON('dependencies', Object.assign({ order: 'created_at' }, q)),
				]);
			} catch (e) {
				replace(loadErrors, errorBox(e));
				return;
			}
			loadErrors.replaceChildren();
			if (!t.length) {
				replace(main, h('h1', {}, 'Task not found'),
					h('p', {}, 'No task ', h('code', {}, id), ' in this account.'), h('a', { href: '#/tasks' }, '← Tasks'));
				viewCleanup.forEach((f) => f());
				viewCleanup = [];
				return;
			}
			task = t[0];
			document.title = task.title + ' · agent_tasks';
			const latest = runs[runs.length - 1];

			region(R.head, [task.title, task.status, task.status_reason, task.archived, task.feedback], () => [
				h('h1', { id: 'task-title' }, task.title),
				h('div', { class: 'row' }, badge(task.status),
					task.status_reason ? h('span', { class: 'muted', id: 'status-reason' }, 'reason: ' + task.status_reason) : '',
					task.archived ? h('span', { class: 'badge' }, 'archived') : '',
					task.feedback ? h('span', { class: 'badge' }, 'feedback: ' + task.feedback) : ''),
			]);
			const live = latest && latest.status === 'in_progress' ? {
				phase: latest.phase, progress: latest.progress, data: latest.progress_data, worker: latest.worker,
				heartbeat: latest.heartbeat_at, attempt: latest.attempt,
			} : null;
			region(R.live, live, () => {
				if (!live) return [];
				const pct = live.data && typeof live.data.percent === 'number'
					? Math.max(0, Math.min(100, live.data.percent)) : null;
				return h('section', { class: 'panel progress-box', 'aria-labelledby': 'live-title', 'aria-live': 'polite' },
					h('h2', { id: 'live-title' }, 'In progress'),
					h('div', { class: 'row' },
						h('strong', { id: 'live-phase' }, live.phase || 'started'),
						pct !== null ? h('span', { id: 'live-percent' }, pct + ' %') : '',
						h('span', { class: 'muted small' }, `attempt ${live.attempt}`, live.worker ? ', ' + live.worker : '',
							live.heartbeat ? ', last report ' + when(live.heartbeat) : '')),
					pct !== null ? h('progress', { max: 100, value: pct, 'aria-label': 'Progress' }) : '',
					live.progress ? h('p', { id: 'live-message' }, live.progress) : '');
			});
			if (writer) {
				region(R.actions, [task.status, task.archived, task.feedback], () => renderActions(task));
				region(messageButtons, task.status, () => renderMessageButtons(task.status));
			}
			const open = task.status === 'needs_clarification'
				? [...messages].reverse().find((m) => m.role === 'agent' && m.data && m.data.kind === 'clarification_request')
				: null;
			region(R.question, open ? [open.id, open.body] : null, () => open
				? h('section', { class: 'panel question', 'aria-labelledby': 'q-title' },
					h('h2', { id: 'q-title' }, 'The agent asks'),
					h('p', { class: 'body', id: 'question-text' }, open.body),
					h('p', { class: 'muted small' }, writer ? 'Answer in the conversation box below: the run goes on with your answer.'
						: 'A key with the task:write scope can answer.'))
				: []);
			region(R.conversation, messages, () => messages.length
				? h('ol', { class: 'messages' }, messages.map((m) => h('li', {
					class: 'role-' + m.role + (open && m.id === open.id ? ' question' : '') },
				h('div', { class: 'muted small' }, m.role, m.author ? ' · ' + m.author : '', ' · ', timeEl(m.created_at),
					m.data && m.data.kind === 'clarification_request' ? ' · question' : ''),
				h('div', { class: 'body' }, m.body))))
				: h('p', { class: 'muted' }, 'No messages yet.'));
			region(R.details, task, () => h('dl', { class: 'kv' },
				h('dt', {}, 'Id'), h('dd', { class: 'mono' }, task.id),
				h('dt', {}, 'Agent'), h('dd', {}, task.agent || '—'),
				h('dt', {}, 'Owner'), h('dd', {}, task.owner || '—'),
				h('dt', {}, 'Created'), h('dd', {}, timeEl(task.created_at), task.created_by ? ' by ' + task.created_by : ''),
				h('dt', {}, 'Updated'), h('dd', {}, timeEl(task.updated_at)),
				h('dt', {}, 'Priority'), h('dd', {}, task.priority),
				task.type ? [h('dt', {}, 'Type'), h('dd', {}, task.type)] : '',
				task.command ? [h('dt', {}, 'Command'), h('dd', {}, task.command)] : '',
				task.labels && task.labels.length ? [h('dt', {}, 'Labels'), h('dd', {}, list(task.labels))] : '',
				task.external_id ? [h('dt', {}, 'External id'), h('dd', {}, task.external_id)] : '',
				h('dt', {}, 'Origin'), h('dd', {}, task.origin || '—'),
				h('dt', {}, 'Prompt'), h('dd', {}, task.prompt ? h('div', { class: 'body', id: 'task-prompt' }, task.prompt) : '—'),
				h('dt', {}, 'Context'), h('dd', {}, json(task.context, 'context')),
				task.item ? [h('dt', {}, 'Item'), h('dd', {}, json(task.item, 'item'))] : '',
				task.metadata && Object.keys(task.metadata).length ? [h('dt', {}, 'Metadata'), h('dd', {}, json(task.metadata, 'metadata'))] : ''));
			region(R.output, [task.output, task.error], () => [
				task.output !== null ? json(task.output, 'output') : h('p', { class: 'muted' }, 'No output yet.'),
				task.error ? [h('h3', {}, 'Error'), json(task.error, 'error')] : '']);
			region(R.runs, runs, () => runs.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'cards' },
				h('thead', {}, h('tr', {}, ['#', 'Status', 'Phase / progress', 'Worker', 'Queued', 'Started', 'Ended', 'Took', 'Usage', 'Error']
					.map((c) => h('th', { scope: 'col' }, c)))),
				h('tbody', {}, runs.map((r) => h('tr', {},
					h('td', { 'data-label': 'Attempt' }, r.attempt),
					h('td', { 'data-label': 'Status' }, badge(r.status), r.status_reason ? h('div', { class: 'muted small' }, r.status_reason) : ''),
					h('td', { 'data-label': 'Phase' }, r.phase || '', r.progress ? h('div', { class: 'small' }, r.progress) : ''),
					h('td', { 'data-label': 'Worker' }, r.worker || ''),
					h('td', { 'data-label': 'Queued' }, timeEl(r.queued_at)),
					h('td', { 'data-label': 'Started' }, timeEl(r.started_at)),
					h('td', { 'data-label': 'Ended' }, timeEl(r.ended_at)),
					h('td', { 'data-label': 'Took' }, seconds(r.started_at, r.ended_at)),
					h('td', { 'data-label': 'Usage' }, r.tokens ? r.tokens + ' tokens' : '', r.cost ? ' · ' + r.cost : ''),
					h('td', { 'data-label': 'Error' }, r.error ? json(r.error, 'run-error-' + r.id) : ''))))))
				: h('p', { class: 'muted' }, 'No runs yet.'));
			region(R.timeline, activities, () => h('ol', { class: 'timeline', id: 'timeline' }, [...activities].reverse().map((a) => h('li', {},
				h('div', {}, h('strong', {}, a.event),
					a.from_status || a.to_status ? ` ${a.from_status || '∅'} → ${a.to_status || '∅'}` : '',
					a.reason ? h('span', { class: 'muted' }, ' (' + a.reason + ')') : ''),
				h('div', { class: 'muted small' }, timeEl(a.created_at), a.actor ? ' · ' + a.actor : ''),
				a.data && Object.keys(a.data).length ? json(a.data, 'activity-' + a.id) : ''))));
			region(R.artifacts, artifacts, () => artifacts.length ? h('ul', {}, artifacts.map((a) => h('li', {},
				a.stored
					? actionButton(a.name, () => download(a), { errors: actionErrors, key: 'artifact-' + a.id, cls: 'link' })
					: (/^https?:\/\//i.test(a.url || '')
						? h('a', { href: a.url, rel: 'noopener noreferrer', target: '_blank' }, a.name)
						: h('span', {}, a.name, ' ', a.url || '')),
				h('span', { class: 'muted small' }, ` ${a.content_type || ''}${a.size !== null ? ', ' + a.size + ' bytes' : ''}`))))
				: h('p', { class: 'muted' }, 'No artifacts.'));
			region(R.family, [task.parent_id, children, deps], () => [
				task.parent_id ? h('p', {}, 'Parent: ', h('a', { href: '#/task/' + task.parent_id }, task.parent_id)) : '',
				children.length ? [h('h3', {}, `Children (${children.length})`), h('ul', { id: 'children' }, children.map((c) =>
					h('li', {}, h('a', { href: '#/task/' + c.id }, c.title), ' ', badge(c.status))))] : '',
				deps.length ? [h('h3', {}, 'Waits for'), h('ul', {}, deps.map((d) =>
					h('li', {}, h('a', { href: '#/task/' + d.depends_on, class: 'mono' }, d.depends_on), ' ', badge(d.depends_on_status))))] : '',
				!task.parent_id && !children.length && !deps.length ? h('p', { class: 'muted' }, 'None.') : '']);
			region(R.people, [task.assignees, task.followers], () => h('dl', { class: 'kv' },
				h('dt', {}, 'Assignees'), h('dd', { id: 'assignee-list' }, list(task.assignees) || '—'),
				h('dt', {}, 'Followers'), h('dd', { id: 'follower-list' }, list(task.followers) || '—')));
			if (!assigneesTouched && document.activeElement !== assignees) assignees.value = list(task.assignees);
		}

		async function presence() {
			try {
				const w = await rpc('touch_presence', { task: id, device_id: deviceId() });
				region(R.watchers, w, () => w.length ? h('ul', { id: 'watchers' }, w.map((p) =>
					h('li', {}, p.watcher, h('span', { class: 'muted small' }, ' since ' + when(p.since)))))
					: h('p', { class: 'muted' }, 'Nobody.'));
			} catch (e) {
				region(R.watchers, 'error', () => errorBox(e));
			}
		}

		// Live: a run in progress is polled every second, other tasks every two.
		let timer = null;
		let stopped = false;
		const loop = async () => {
			if (!document.hidden) await refresh();
			if (!stopped) timer = setTimeout(loop, task && task.status === 'in_progress' ? 1000 : 2000);
		};
		loop();
		poll(20000, presence);
		viewCleanup.push(() => {
			stopped = true;
			clearTimeout(timer);
			rpc('leave_presence', { task: id, device_id: deviceId() }).catch(() => {});
		});
	}

	/* ---- New task -------------------------------------------------------- */

	function viewNew(main) {
		const errors = h('div', {});
		const title = h('input', { id: 'n-title', required: true, maxlength: 500 });
		const prompt = h('textarea', { id: 'n-prompt', rows: 5 });
		const command = h('input', { id: 'n-command' });
		const items = h('textarea', { id: 'n-items', rows: 6, 'aria-describedby': 'items-help' });
		const agent = h('select', { id: 'n-agent' }, h('option', { value: '' }, 'none (external workers)'));
		const priority = h('input', { id: 'n-priority', type: 'number', value: '0' });
		const labels = h('input', { id: 'n-labels', placeholder: 'comma separated' });
		const assignees = h('input', { id: 'n-assignees', placeholder: 'e-mails, comma separated' });
		const context = h('textarea', { id: 'n-context', rows: 3, placeholder: '{"repository": "..."}' });
		const auto = h('input', { id: 'n-auto', type: 'checkbox', checked: true });
		const modePrompt = h('input', { type: 'radio', name: 'mode', value: 'prompt', id: 'mode-prompt', checked: true });
		const modeCommand = h('input', { type: 'radio', name: 'mode', value: 'command', id: 'mode-command' });
		const promptPart = h('div', { class: 'form' }, h('label', {}, 'Prompt', prompt));
		const commandPart = h('div', { class: 'form', hidden: true },
			h('label', {}, 'Command', command),
			h('label', {}, 'Items', items),
			h('p', { id: 'items-help', class: 'muted small' },
				'One item per line: a title, or a JSON object {"title", "prompt", "context", "external_id"}. Each item becomes a child task.'));
		const setMode = () => {
			promptPart.hidden = !modePrompt.checked;
			commandPart.hidden = !modeCommand.checked;
		};
		modePrompt.addEventListener('change', setMode);
		modeCommand.addEventListener('change', setMode);

		const form = h('form', { class: 'form panel', 'aria-labelledby': 'new-title' },
			h('h1', { id: 'new-title' }, 'New task'),
			h('fieldset', {}, h('legend', {}, 'Mode'),
				h('label', { class: 'inline' }, modePrompt, 'Prompt'),
				h('label', { class: 'inline' }, modeCommand, 'Command with items')),
			h('label', {}, 'Title', title),
			promptPart, commandPart,
			h('div', { class: 'row' }, h('label', {}, 'Agent', agent), h('label', {}, 'Priority', priority)),
			h('label', {}, 'Labels', labels),
			h('label', {}, 'Assignees', assignees),
			h('label', {}, 'Context (JSON object)', context),
			h('label', { class: 'inline' }, auto, 'Queue it now (auto_process)'),
			errors,
			h('div', {}, h('button', { type: 'submit', class: 'primary', id: 'n-submit' }, 'Create task')));

		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			errors.replaceChildren();
			const args = {
				title: title.value.trim(), agent: agent.value || null, priority: parseInt(priority.value, 10) || 0,
				labels: splitList(labels.value), assignees: splitList(assignees.value), auto_process: auto.checked,
			};
			try {
				if (context.value.trim()) args.context = JSON.parse(context.value);
				if (modeCommand.checked) {
					args.command = command.value.trim();
					args.items = items.value.split('\n').map((l) => l.trim()).filter(Boolean)
						.map((l) => (l.startsWith('{') ? JSON.parse(l) : l));
				} else {
					args.prompt = prompt.value.trim() || null;
				}
			} catch (e) {
				errors.append(errorBox({ message: 'invalid JSON: ' + e.message }));
				return;
			}
			const submit = $('#n-submit');
			submit.disabled = true;
			try {
				const t = await rpc('create_task', args);
				toast('Task created');
				location.hash = '#/task/' + t.id;
			} catch (e) {
				errors.append(errorBox(e));
			} finally {
				submit.disabled = false;
			}
		});
		replace(main, form);
		if (!can('task:write')) {
			form.prepend(h('div', { class: 'notice' }, 'This key has no task:write scope: the API will refuse to create tasks.'));
		}
		getJSON('agents', { select: 'name,kind', order: 'name' }).then((agents) => {
			append(agent, agents.map((a) => h('option', { value: a.name }, `${a.name} (${a.kind})`)));
		}, (e) => errors.append(errorBox(e)));
		title.focus();
	}

	/* ---- Queues ---------------------------------------------------------- */

	// Completed (green) and failed (red) runs per minute, stacked, as SVG
	// built node by node.
	function chart(points, label) {
		const W = 600, H = 80, n = points.length || 60, bw = W / n;
		const max = Math.max(1, ...points.map((p) => p.completed + p.failed));
		const svg = h('svg:svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label });
		points.forEach((p, i) => {
			const hc = (p.completed / max) * (H - 4), hf = (p.failed / max) * (H - 4);
			const g = h('svg:g', {}, h('svg:title', {}, `${when(p.minute)}: ${p.completed} completed, ${p.failed} failed`));
			if (hc) g.append(h('svg:rect', { class: 'c', x: i * bw + 0.5, y: H - hc, width: Math.max(1, bw - 1), height: hc }));
			if (hf) g.append(h('svg:rect', { class: 'f', x: i * bw + 0.5, y: H - hc - hf, width: Math.max(1, bw - 1), height: hf }));
			svg.append(g);
		});
		return svg;
	}

	function viewQueues(main) {
		const errors = h('div', {});
		const stats = h('div', { id: 'queue-stats' });
		const charts = h('div', { id: 'queue-charts' });
		const workers = h('div', { id: 'workers' });
		replace(main, h('h1', {}, 'Queues'), errors,
			h('section', { class: 'panel', 'aria-labelledby': 'qs-title' }, h('h2', { id: 'qs-title' }, 'Per agent'), stats),
			h('section', { class: 'panel', 'aria-labelledby': 'qc-title' },
				h('h2', { id: 'qc-title' }, 'Completed and failed runs per minute, last hour'),
				h('p', { class: 'legend' }, h('span', { class: 'c' }, 'completed'), ' ', h('span', { class: 'f' }, 'failed')),
				charts),
			can('admin') ? h('section', { class: 'panel', 'aria-labelledby': 'w-title' }, h('h2', { id: 'w-title' }, 'Workers'), workers) : '');
		poll(5000, async () => {
			let qs, series, ws = null;
			try {
				[qs, series, ws] = await Promise.all([
					getJSON('queue_stats', { order: 'agent.nullsfirst' }),
					getJSON('queue_throughput', { order: 'agent.nullsfirst,minute' }),
					can('admin') ? rpc('worker_status') : null]);
			} catch (e) {
				replace(errors, errorBox(e));
				return;
			}
			errors.replaceChildren();
			region(stats, qs, () => qs.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'cards' },
				h('thead', {}, h('tr', {}, ['Agent', 'Kind', 'Queued', 'Runnable', 'In progress', 'Oldest queued', 'Completed 1 h', 'Failed 1 h', 'p50 s', 'p95 s', 'Tokens', 'Cost']
					.map((c) => h('th', { scope: 'col' }, c)))),
				h('tbody', {}, qs.map((q) => h('tr', {},
					h('td', { 'data-label': 'Agent' }, q.agent || '(no agent)'), h('td', { 'data-label': 'Kind' }, q.kind),
					h('td', { 'data-label': 'Queued' }, q.queued), h('td', { 'data-label': 'Runnable' }, q.runnable),
					h('td', { 'data-label': 'In progress' }, q.in_progress), h('td', { 'data-label': 'Oldest queued' }, q.oldest_queued_age || ''),
					h('td', { 'data-label': 'Completed 1 h' }, q.completed_last_hour), h('td', { 'data-label': 'Failed 1 h' }, q.failed_last_hour),
					h('td', { 'data-label': 'p50 s' }, q.duration_p50_seconds === null ? '' : q.duration_p50_seconds.toFixed(2)),
					h('td', { 'data-label': 'p95 s' }, q.duration_p95_seconds === null ? '' : q.duration_p95_seconds.toFixed(2)),
					h('td', { 'data-label': 'Tokens' }, q.used_tokens), h('td', { 'data-label': 'Cost' }, q.used_cost))))))
				: h('p', { class: 'muted' }, 'No agents.'));
			const byAgent = new Map();
			for (const p of series) {
				const k = p.agent === null ? '(no agent)' : p.agent;
				if (!byAgent.has(k)) byAgent.set(k, []);
				byAgent.get(k).push(p);
			}
			region(charts, series, () => byAgent.size ? [...byAgent].map(([name, pts]) => {
				const c = pts.reduce((a, p) => a + p.completed, 0), f = pts.reduce((a, p) => a + p.failed, 0);
				const label = `${name}: ${c} completed, ${f} failed in the last hour`;
				return h('div', { class: 'agent-chart', 'data-agent': name },
					h('h3', {}, name, h('span', { class: 'muted small' }, ` ${c} completed, ${f} failed`)), chart(pts, label));
			}) : h('p', { class: 'muted' }, 'No agents.'));
			if (ws) {
				region(workers, ws, () => ws.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'cards' },
					h('thead', {}, h('tr', {}, ['Worker', 'Pid', 'State', 'Since', 'Current run', 'Done', 'Failed', 'Last error']
						.map((c) => h('th', { scope: 'col' }, c)))),
					h('tbody', {}, ws.map((w) => h('tr', {},
						h('td', { 'data-label': 'Worker' }, w.worker), h('td', { 'data-label': 'Pid' }, w.pid),
						h('td', { 'data-label': 'State' }, w.state), h('td', { 'data-label': 'Since' }, timeEl(w.state_since)),
						h('td', { 'data-label': 'Current run', class: 'mono' }, w.current_run || ''),
						h('td', { 'data-label': 'Done' }, w.runs_done), h('td', { 'data-label': 'Failed' }, w.runs_failed),
						h('td', { 'data-label': 'Last error' }, w.last_error || '', w.last_error_at ? h('div', { class: 'muted small' }, when(w.last_error_at)) : ''))))))
					: h('p', { class: 'muted' }, 'No background workers (is the library preloaded?).'));
			}
		});
	}

	/* ---- Admin ----------------------------------------------------------- */

	function viewAdmin(main) {
		const errors = h('div', { id: 'admin-errors' });
		const agents = h('div', { id: 'admin-agents' });
		const hooks = h('div', { id: 'admin-webhooks' });
		const keys = h('div', { id: 'admin-keys' });
		const keyErrors = h('div', {});
		const created = h('div', { id: 'new-token' });
		const keyName = h('input', { id: 'k-name', required: true });
		const scopeBoxes = ['task:read', 'task:write', 'worker', 'admin'].map((s) =>
			h('label', { class: 'inline' }, h('input', { type: 'checkbox', value: s, checked: s === 'task:write' }), s));
		const expires = h('input', { id: 'k-expires', type: 'datetime-local' });
		const keyEmail = h('input', { id: 'k-email', type: 'email', placeholder: 'e-mail, optional' });
		const openDeliveries = new Set();

		const keyForm = h('form', { class: 'form', 'aria-label': 'Create an API key' },
			h('div', { class: 'row' }, h('label', {}, 'Name', keyName), h('label', {}, 'Expires', expires), h('label', {}, 'Acts as', keyEmail)),
			h('fieldset', {}, h('legend', {}, 'Scopes'), scopeBoxes),
			keyErrors, created,
			h('div', {}, h('button', { type: 'submit', class: 'primary' }, 'Create key')));
		keyForm.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			keyErrors.replaceChildren();
			created.replaceChildren();
			const args = {
				name: keyName.value.trim(),
				scopes: scopeBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value),
			};
			if (expires.value) args.expires_at = new Date(expires.value).toISOString();
			if (keyEmail.value.trim()) args.email = keyEmail.value.trim();
			try {
				const k = await rpc('create_api_key', args);
				const tok = h('div', { class: 'token mono', id: 'token-value', tabindex: 0 }, k.token);
				replace(created, h('div', { class: 'notice', role: 'status' },
					h('p', {}, 'The token of ', h('strong', {}, k.name), ' — shown only now; it cannot be read again:'), tok,
					h('p', {}, h('button', { type: 'button', onclick: () => navigator.clipboard.writeText(k.token).then(() => toast('Copied')) }, 'Copy'))));
				keyName.value = '';
				tok.focus();
				await load();
			} catch (e) {
				keyErrors.append(errorBox(e));
			}
		});

		replace(main, h('h1', {}, 'Admin'), errors,
			h('section', { class: 'panel', 'aria-labelledby': 'ag-title' }, h('h2', { id: 'ag-title' }, 'Agents'), agents),
			h('section', { class: 'panel', 'aria-labelledby': 'wh-title' }, h('h2', { id: 'wh-title' }, 'Webhook endpoints'), hooks),
			h('section', { class: 'panel', 'aria-labelledby': 'ak-title' }, h('h2', { id: 'ak-title' }, 'API keys'), keys,
				h('h3', {}, 'New key'), keyForm));

		async function deliveriesOf(endpoint, box) {
			const ds = await getJSON('webhook_deliveries', { webhook: 'eq.' + endpoint.id, order: 'id.desc', limit: 20,
				select: 'id,event,status,in_flight,attempts,next_attempt_at,last_status_code,last_error,created_at,delivered_at,task_id,payload' });
			const ids = ds.map((d) => d.id);
			const attempts = ids.length ? await getJSON('webhook_attempts', { delivery_id: `in.(${ids.join(',')})`, order: 'id' }) : [];
			const dErrors = h('div', {});
			replace(box, dErrors, ds.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'cards' },
				h('thead', {}, h('tr', {}, ['Event', 'Status', 'Attempts', 'Last code', 'Next attempt', 'Last error', '']
					.map((c) => h('th', { scope: 'col' }, c)))),
				h('tbody', {}, ds.map((d) => [
					h('tr', {},
						h('td', { 'data-label': 'Event' }, d.event, h('div', { class: 'muted small' }, timeEl(d.created_at))),
						h('td', { 'data-label': 'Status' }, d.status, d.in_flight ? ' (in flight)' : ''),
						h('td', { 'data-label': 'Attempts' }, d.attempts),
						h('td', { 'data-label': 'Last code' }, d.last_status_code === null ? '' : d.last_status_code),
						h('td', { 'data-label': 'Next attempt' }, timeEl(d.next_attempt_at)),
						h('td', { 'data-label': 'Last error' }, d.last_error || ''),
						h('td', {}, actionButton('Redeliver', () => rpc('redeliver', { delivery: d.id }),
							{ errors: dErrors, key: 'redeliver-' + d.id, after: () => deliveriesOf(endpoint, box) }))),
					h('tr', {}, h('td', { colspan: 7 }, h('details', {}, h('summary', {}, 'Attempts and payload'),
						h('ol', {}, attempts.filter((a) => a.delivery_id === d.id).map((a) => h('li', {},
							`${a.status}${a.status_code ? ' ' + a.status_code : ''}${a.latency_ms !== null ? ', ' + a.latency_ms + ' ms' : ''}`,
							a.error ? ' — ' + a.error : '', h('span', { class: 'muted small' }, ' ', when(a.started_at)),
							a.response_body ? h('pre', {}, a.response_body) : ''))),
						json(d.payload, 'payload-' + d.id)))),
				]))))
				: h('p', { class: 'muted' }, 'No deliveries.'));
		}

		async function load() {
			let ag, eps, ks;
			try {
				[ag, eps, ks] = await Promise.all([
					getJSON('agents', { order: 'name' }),
					getJSON('webhook_endpoints', { order: 'created_at' }),
					getJSON('api_keys', { order: 'created_at.desc' })]);
			} catch (e) {
				replace(errors, errorBox(e));
				return;
			}
			errors.replaceChildren();
			region(agents, ag, () => ag.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'cards' },
				h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Target', 'Concurrency', 'Timeout', 'Max attempts', 'Budget']
					.map((c) => h('th', { scope: 'col' }, c)))),
				h('tbody', {}, ag.map((a) => h('tr', {},
					h('td', { 'data-label': 'Name' }, a.name), h('td', { 'data-label': 'Kind' }, a.kind),
					h('td', { 'data-label': 'Target', class: 'mono' }, a.target || ''),
					h('td', { 'data-label': 'Concurrency' }, a.concurrency), h('td', { 'data-label': 'Timeout' }, a.timeout),
					h('td', { 'data-label': 'Max attempts' }, a.max_attempts),
					h('td', { 'data-label': 'Budget' }, a.budget_tokens ? a.budget_tokens + ' tokens' : '', a.budget_cost ? ' ' + a.budget_cost : ''))))))
				: h('p', { class: 'muted' }, 'No agents.'));
			region(hooks, eps, () => eps.length ? h('ul', { class: 'form' }, eps.map((e) => {
				const box = h('div', {});
				const det = h('details', { open: openDeliveries.has(e.id) },
					h('summary', { 'data-key': 'deliveries-' + e.id }, 'Deliveries'), box);
				det.addEventListener('toggle', () => {
					if (det.open) {
						openDeliveries.add(e.id);
						deliveriesOf(e, box).catch((err) => replace(box, errorBox(err)));
					} else {
						openDeliveries.delete(e.id);
					}
				});
				if (det.open) deliveriesOf(e, box).catch((err) => replace(box, errorBox(err)));
				return h('li', { class: 'panel' },
					h('div', { class: 'mono' }, e.url),
					h('div', { class: 'small' }, e.enabled ? 'enabled' : 'disabled' + (e.disabled_reason ? ': ' + e.disabled_reason : ''),
						' · events ', list(e.events), e.description ? ' · ' + e.description : ''),
					det);
			})) : h('p', { class: 'muted' }, 'No webhook endpoints.'));
			region(keys, ks, () => h('div', { class: 'table-wrap' }, h('table', { class: 'cards', id: 'key-table' },
				h('thead', {}, h('tr', {}, ['Name', 'Prefix', 'Scopes', 'Acts as', 'Status', 'Created', 'Last used', '']
					.map((c) => h('th', { scope: 'col' }, c)))),
				h('tbody', {}, ks.map((k) => h('tr', { 'data-key-name': k.name },
					h('td', { 'data-label': 'Name' }, k.name), h('td', { 'data-label': 'Prefix', class: 'mono' }, k.prefix),
					h('td', { 'data-label': 'Scopes' }, list(k.scopes)), h('td', { 'data-label': 'Acts as' }, k.email || ''),
					h('td', { 'data-label': 'Status' }, k.status), h('td', { 'data-label': 'Created' }, timeEl(k.created_at)),
					h('td', { 'data-label': 'Last used' }, timeEl(k.last_used_at)),
					h('td', {}, k.status === 'active' ? actionButton('Revoke', () => rpc('revoke_api_key', { key: k.id }),
						{ errors: keyErrors, cls: 'danger', key: 'revoke-' + k.id, confirmText: `Revoke the key ${k.name}?`, after: load }) : '')))))));
		}
		if (!can('admin')) {
			errors.append(h('div', { class: 'notice' }, 'These pages need a key with the admin scope; the API says:'));
		}
		poll(5000, load);
	}

	/* ---- routing --------------------------------------------------------- */

	async function route() {
		viewCleanup.forEach((f) => f());
		viewCleanup = [];
		document.title = 'agent_tasks console';
		const main = $('#main');
		if (!auth) {
			showChrome();
			viewSignIn(main);
			return;
		}
		if (!me) {
			try {
				me = await getJSON('rpc/whoami');
			} catch (e) {
				auth = null;
				sessionStorage.removeItem(AUTH_KEY);
				showChrome();
				viewSignIn(main, e);
				return;
			}
			showChrome();
		}
		const [path, qs] = (location.hash.replace(/^#\/?/, '') || 'tasks').split('?');
		const parts = path.split('/');
		const name = parts[0] === 'signin' ? 'tasks' : parts[0];
		for (const a of document.querySelectorAll('#nav a')) {
			if (a.dataset.route === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
		}
		if (name === 'task' && parts[1]) viewTask(main, decodeURIComponent(parts[1]));
		else if (name === 'new') viewNew(main);
		else if (name === 'queues') viewQueues(main);
		else if (name === 'admin') viewAdmin(main);
		else viewTasks(main, new URLSearchParams(qs || ''));
		if (name !== 'new') main.focus({ preventScroll: true });
	}

	$('#signout').addEventListener('click', signOut);
	window.addEventListener('hashchange', route);
	route();
}());
