// core: the embedded data, DOM helpers, lazy chunks, shared formatting.
const DATA = JSON.parse(document.getElementById('re-data').textContent);
const ROLL = DATA.rollouts, RUNS = DATA.runs, PAGE = DATA.pageSize || 100;
const COMPARE = DATA.compare || null;
const OBS_LIMIT = 3000, OBS_LINES = 40;
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...kids){
  const node = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined && kid !== false)
    node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return node;
}
const fmt = (x, d) => (x === null || x === undefined) ? '-' : (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(d === undefined ? 2 : d)) : String(x));
const NO_ERROR = 'completed';  // the word for a rollout that ended without an error ("ok" reads as "passed")
const kindLabel = (k) => (!k || k === 'ok') ? NO_ERROR : k;
function options(select, items){ select.replaceChildren(...items.map(([v, t]) => el('option', {value: v, text: t}))); }
function badge(text, kind, title){ return el('span', {class: 'badge' + (kind ? ' ' + kind : ''), text, title}); }
function pretty(value){ try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); } }
function textOf(message){
  if (message === null || message === undefined) return '';
  if (typeof message === 'string') return message;
  if (!Array.isArray(message)) return pretty(message);
  return message.map(p => p.type === 'text' ? p.text : `[${p.type}: ${p.source ? p.source.path : ''}]`).join('\n');
}
function failText(ff){
  if (!ff) return '';
  let s = ff.tool + ' @ turn ' + ff.turn;
  if (ff.exit_code !== null && ff.exit_code !== undefined) s += ' (exit ' + ff.exit_code + ')';
  else if (ff.error_kind) s += ' (' + ff.error_kind + ')';
  return s;
}

// ------------------------------------------------------------ lazy chunks (script elements work from file://)
const cache = new Map(), pending = new Map();
window.reactEvalChunk = function(i, payload){
  cache.set(i, payload);
  const p = pending.get(i); if (p) { pending.delete(i); p.resolve(payload); }
};
window.reactEvalLoaded = () => [...cache.keys()];  // which rollouts were fetched (lazy loading)
function loadScript(src, onerror){
  const script = el('script', {src});
  script.onerror = onerror;
  script.onload = () => script.remove();
  document.head.append(script);
}
function loadChunk(i){
  if (cache.has(i)) return Promise.resolve(cache.get(i));
  if (pending.has(i)) return pending.get(i).promise;
  let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; });
  pending.set(i, {promise, resolve, reject});
  loadScript(ROLL[i].chunk, () => { pending.delete(i); reject(new Error('could not load ' + ROLL[i].chunk)); });
  return promise;
}
