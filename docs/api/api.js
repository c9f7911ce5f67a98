// api.js - renders /api/openapi.json into the reference page: one section per resource (tag),
// one collapsible entry per path with its acts, parameters, request bodies and answers, then the
// shared schemas. Text from the document is inserted as text, never as HTML.
'use strict';

function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (k === 'class') e.className = v;
        else e.setAttribute(k, v);
    }
    for (const c of [].concat(children || [])) {
        if (c === null || c === undefined) continue;
        e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
}

// Text with `code` spans and "- " list lines, as the descriptions are written.
function rich(text) {
    const frag = document.createDocumentFragment();
    const lines = String(text || '').split('\n');
    let list = null;
    for (const line of lines) {
        if (line.trim() === '') { list = null; continue; }
        const target = line.startsWith('- ') ? (list = list || frag.appendChild(el('ul'))).appendChild(el('li')) : (list = null, frag.appendChild(el('p')));
        const parts = (line.startsWith('- ') ? line.slice(2) : line).split('`');
        parts.forEach((p, i) => target.appendChild(i % 2 ? el('code', {}, p) : document.createTextNode(p)));
    }
    return frag;
}

function refName(ref) { return ref.replace(/^#\/components\/[a-zA-Z]+\//, ''); }

function resolve(doc, obj) {
    while (obj && obj.$ref) {
        const parts = obj.$ref.replace(/^#\//, '').split('/');
        obj = parts.reduce((o, p) => (o ? o[p.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
    }
    return obj || {};
}

// A short description of a schema, with links to the shared ones.
function schemaLabel(s) {
    if (!s) return document.createTextNode('—');
    if (s.$ref) return el('a', { href: '#schema-' + refName(s.$ref), class: 'mono' }, refName(s.$ref));
    const span = el('span', { class: 'mono' });
    const alt = s.oneOf || s.anyOf || s.allOf;
    if (alt) {
        alt.forEach((a, i) => {
            if (i) span.appendChild(document.createTextNode(s.allOf ? ' & ' : ' | '));
            span.appendChild(schemaLabel(a));
        });
        return span;
    }
    if (s.type === 'array') {
        span.appendChild(document.createTextNode('['));
        span.appendChild(schemaLabel(s.items));
        span.appendChild(document.createTextNode(']'));
        return span;
    }
    let t = s.type || 'any';
    if (s.enum) t += ' ' + s.enum.map((v) => JSON.stringify(v)).join('|');
    if (s.nullable) t += ' or null';
    if (s.pattern) t += ' /' + s.pattern + '/';
    span.textContent = t;
    return span;
}

function renderActs(acts) {
    const rows = Object.entries(acts).map(([name, a]) =>
        el('tr', {}, [el('td', {}, el('code', {}, name)), el('td', {}, rich(a.description)),
            el('td', {}, a.requestBody ? schemaLabel(a.requestBody) : '—'), el('td', {}, a.response ? schemaLabel(a.response) : 'empty body')]));
    return el('table', { class: 'acts' }, [el('tr', {}, [el('th', {}, 'act'), el('th', {}, 'behaviour'), el('th', {}, 'request body'), el('th', {}, '200 body')])].concat(rows));
}

function renderParams(doc, params) {
    const rows = params.map((p0) => {
        const p = resolve(doc, p0);
        const desc = el('td', {}, p.name === 'act' ? el('span', {}, 'the operation (see the acts above)') : rich(p.description));
        return el('tr', {}, [el('td', {}, [el('code', {}, p.name), p.required ? el('span', { class: 'req' }, ' required') : null]),
            el('td', {}, p.in), el('td', {}, schemaLabel(p.schema)), desc]);
    });
    return el('table', {}, [el('tr', {}, [el('th', {}, 'name'), el('th', {}, 'in'), el('th', {}, 'type'), el('th', {}, 'description')])].concat(rows));
}

function renderResponses(doc, responses) {
    const rows = Object.entries(responses).map(([code, r0]) => {
        const r = resolve(doc, r0);
        const content = r.content ? Object.entries(r.content)[0] : null;
        return el('tr', {}, [el('td', { class: 'status-' + code[0] }, code), el('td', {}, rich(r.description)),
            el('td', {}, content ? [el('span', { class: 'mono' }, content[0] + ' '), schemaLabel(content[1].schema)] : 'no body'),
            el('td', { class: 'mono' }, Object.keys(r.headers || {}).join(', '))]);
    });
    return el('table', {}, [el('tr', {}, [el('th', {}, 'status'), el('th', {}, 'meaning'), el('th', {}, 'body'), el('th', {}, 'headers')])].concat(rows));
}

function modeOf(path, op) {
    if (path.includes('/restricted/')) return 'restricted';
    if (path.includes('/private/')) return 'private';
    return op.security && op.security.length && Object.keys(op.security[0]).length ? 'authenticated' : 'public';
}

function renderPath(doc, path, item) {
    const methods = Object.keys(item).filter((m) => ['get', 'post', 'head', 'put', 'delete', 'patch'].includes(m));
    const first = item[methods[0]];
    const mode = modeOf(path, first);
    const summary = el('summary', {}, methods.map((m) => el('span', { class: 'method m-' + m }, m.toUpperCase()))
        .concat([el('span', { class: 'path' }, ' ' + path), el('span', { class: 'mode mode-' + (mode === 'authenticated' ? 'restricted' : mode) }, mode)]));
    const body = el('div', { class: 'body' }, [rich(first.description)]);
    if (first['x-xws-acts']) {
        body.appendChild(el('h3', {}, 'Acts'));
        body.appendChild(renderActs(first['x-xws-acts']));
    }
    if (first.parameters && first.parameters.length) {
        body.appendChild(el('h3', {}, 'Parameters'));
        body.appendChild(renderParams(doc, first.parameters));
    }
    const post = item.post;
    if (post && post.requestBody) {
        body.appendChild(el('h3', {}, 'Request body'));
        const rb = post.requestBody;
        body.appendChild(el('p', {}, [rb.description || '', ' ', schemaLabel(Object.values(rb.content)[0].schema)]));
    }
    body.appendChild(el('h3', {}, 'Answers'));
    body.appendChild(renderResponses(doc, first.responses));
    return el('details', { class: 'path', id: 'op-' + (first.operationId || path) }, [summary, body]);
}

function renderSchema(doc, name, s) {
    const body = el('div', { class: 'body' }, [rich(s.description)]);
    const parts = s.allOf ? s.allOf.map((p) => resolve(doc, p)) : [s];
    if (s.allOf) body.appendChild(el('p', {}, ['all of: ', schemaLabel(s)]));
    for (const part of parts) {
        if (!part.properties) continue;
        const req = new Set(part.required || []);
        const rows = Object.entries(part.properties).map(([k, v]) =>
            el('tr', {}, [el('td', {}, [el('code', {}, k), req.has(k) ? el('span', { class: 'req' }, ' required') : null]),
                el('td', {}, schemaLabel(v)), el('td', {}, rich(v.description))]));
        body.appendChild(el('table', {}, [el('tr', {}, [el('th', {}, 'field'), el('th', {}, 'type'), el('th', {}, 'description')])].concat(rows)));
    }
    if (!s.properties && !s.allOf) body.appendChild(el('p', {}, ['type: ', schemaLabel(s)]));
    return el('details', { class: 'schema', id: 'schema-' + name }, [el('summary', {}, name), body]);
}

function render(doc) {
    const main = document.getElementById('content');
    main.textContent = '';
    document.getElementById('title').textContent = doc.info.title;
    document.title = doc.info.title;
    document.getElementById('version').textContent = 'OpenAPI ' + doc.openapi + ' · API version ' + doc.info.version;
    main.appendChild(el('div', { class: 'intro' }, rich(doc.info.description)));
    const byTag = new Map((doc.tags || []).map((t) => [t.name, []]));
    for (const [path, item] of Object.entries(doc.paths)) {
        const first = Object.values(item)[0];
        const tag = (first.tags || ['other'])[0];
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, item]);
    }
    for (const [tag, paths] of byTag) {
        const info = (doc.tags || []).find((t) => t.name === tag) || {};
        const section = el('section', { class: 'tag', id: 'tag-' + tag.replace(/\W+/g, '-') }, [el('h2', {}, tag), el('p', {}, rich(info.description))]);
        for (const [path, item] of paths) section.appendChild(renderPath(doc, path, item));
        main.appendChild(section);
    }
    const schemas = el('section', { class: 'tag', id: 'schemas' }, [el('h2', {}, 'Schemas')]);
    for (const [name, s] of Object.entries(doc.components.schemas)) schemas.appendChild(renderSchema(doc, name, s));
    main.appendChild(schemas);
    main.setAttribute('data-rendered', String(Object.keys(doc.paths).length));
    if (location.hash) {
        const target = document.getElementById(location.hash.slice(1));
        if (target && target.tagName === 'DETAILS') target.open = true;
    }
}

function setAll(open) {
    document.querySelectorAll('details').forEach((d) => { d.open = open; });
}

document.addEventListener('DOMContentLoaded', () => {
    document.getElementById('expand').addEventListener('click', () => setAll(true));
    document.getElementById('collapse').addEventListener('click', () => setAll(false));
    document.addEventListener('click', (ev) => {
        const a = ev.target.closest('a[href^="#schema-"]');
        const target = a && document.getElementById(a.getAttribute('href').slice(1));
        if (target) target.open = true;
    });
    fetch('/api/openapi.json')
        .then((res) => {
            if (!res.ok) throw new Error('openapi.json answered ' + res.status);
            return res.json();
        })
        .then(render)
        .catch((err) => {
            const status = document.getElementById('status') || document.getElementById('content');
            status.className = 'error';
            status.textContent = 'The description could not be loaded: ' + err.message;
        });
});
