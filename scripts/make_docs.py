#!/usr/bin/env python3
"""Renders the API reference (docs/man) and the guides (README.md, docs/*.md)
to HTML for reading offline, with Debian's tools only: mandoc for the man
pages, pandoc for the markdown.

    scripts/make_docs.py [OUT]          (default: build/docs/html)

OUT/index.html links everything. Links between documents are relative, so
the tree can be copied anywhere: docs/x.md becomes docs/x.html, a
backquoted `docs/x.md` or `nf_conn_write()` in a guide becomes a link to the
guide or the man page, and a man page's references to other pages
(nf_listen(3)) become links too.
"""
import html
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build/docs/html'))
MAN = os.path.join(ROOT, 'docs/man')

CSS = """
body { font-family: system-ui, sans-serif; max-width: 54em; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #1d1d1f; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
pre { background: #f4f4f6; padding: 0.6em 0.8em; overflow-x: auto; border-radius: 4px; }
p code, li code, td code { background: #f4f4f6; padding: 0 0.2em; border-radius: 3px; }
a { color: #0b57d0; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 0.25em 0.5em; }
table.head, table.foot { width: 100%; border: 0; color: #666; }
table.head td, table.foot td { border: 0; }
td.head-rtitle, td.foot-os { text-align: right; } td.head-vol { text-align: center; }
a.permalink { color: inherit; }
h1.Sh { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
dl.Bl-tag > dt { font-weight: normal; margin-top: 0.5em; } dl.Bl-tag > dd { margin-left: 2.5em; }
nav.top { font-size: 0.9em; margin-bottom: 1em; }
ul.pages li { margin: 0.25em 0; } .brief { color: #555; }
"""

def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0 or r.stderr.strip():
        sys.exit('make_docs: %s failed:\n%s' % (' '.join(cmd), r.stderr))
    return r.stdout

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)

# ---- man pages ---------------------------------------------------------------
pages = {}    # name -> (section, main page name) for every page, .so links too
mains = []    # (section, name, NAME line) of the pages with content
for sec in ('3', '7'):
    d = os.path.join(MAN, 'man' + sec)
    for fn in sorted(os.listdir(d)):
        if not fn.endswith('.' + sec):
            continue
        name = fn[:-len(sec) - 1]
        src = open(os.path.join(d, fn)).read()
        m = re.match(r'\.so man(\d)/(.+)\.(\d)\n', src)
        if m:
            pages[name] = (sec, m.group(2))
            continue
        pages[name] = (sec, name)
        nm = re.search(r'^\.SH NAME\n(.*?)\n\.SH', src, re.S | re.M)
        mains.append((sec, name, nm.group(1).replace('\\-', '-').replace('\n', ' ') if nm else name))

def man_href(name, frm_dir):
    sec, main = pages[name]
    return os.path.relpath(os.path.join(OUT, 'man', 'man' + sec, main + '.' + sec + '.html'), frm_dir)

def link_refs(text, frm_dir):
    """<b>name</b>(N) -> a link when the page exists."""
    def sub(m):
        name, sec = m.group(1), m.group(2)
        if name in pages and pages[name][0] == sec:
            return '<a href="%s"><b>%s</b></a>(%s)' % (man_href(name, frm_dir), name, sec)
        return m.group(0)
    return re.sub(r'<b>([A-Za-z_][A-Za-z0-9_]*)</b>\((\d)\)', sub, text)

for sec, name, _ in mains:
    out_dir = os.path.join(OUT, 'man', 'man' + sec)
    style = os.path.relpath(os.path.join(OUT, 'style.css'), out_dir)
    body = run(['mandoc', '-Thtml', '-Wwarning,stop', '-Ostyle=' + style,
                os.path.join('man' + sec, name + '.' + sec)], cwd=MAN)
    body = link_refs(body, out_dir)
    index = os.path.relpath(os.path.join(OUT, 'index.html'), out_dir)
    body = body.replace('<body>', '<body>\n<nav class="top"><a href="%s">netframe documentation</a></nav>' % index, 1)
    write(os.path.join(out_dir, '%s.%s.html' % (name, sec)), body)
# one small page per .so link, so that every function has its own URL
for name, (sec, main) in pages.items():
    if main == name:
        continue
    out_dir = os.path.join(OUT, 'man', 'man' + sec)
    target = main + '.' + sec + '.html'
    write(os.path.join(out_dir, name + '.' + sec + '.html'),
          '<!DOCTYPE html><html><head><meta charset="utf-8"/><title>%s(%s)</title>'
          '<meta http-equiv="refresh" content="0; url=%s"/></head><body>'
          '<p>%s(%s) is documented in <a href="%s">%s(%s)</a>.</p></body></html>\n'
          % (name, sec, target, name, sec, target, main, sec))

# ---- guides ----------------------------------------------------------------------
LUA = r'''
-- Links between the markdown documents, and backquoted references to them
-- and to functions with a man page, become links into the HTML tree.
local funcs = {}
for line in io.lines(os.getenv("NF_DOCS_FUNCS")) do
  local name, page = line:match("^(%S+) (%S+)$")
  funcs[name] = page
end
local mds = {}
for line in io.lines(os.getenv("NF_DOCS_MDS")) do mds[line] = true end
local manroot, docroot

function Meta(m)
  manroot = pandoc.utils.stringify(m.nf_manroot)
  docroot = pandoc.utils.stringify(m.nf_docroot)
end

local function md_target(t)
  local path, frag = t:match("^([^#]*%.md)(#?.*)$")
  if not path or path:match("^%a+://") then return nil end
  return path:gsub("%.md$", ".html") .. frag
end

function Link(l)
  local t = md_target(l.target)
  if t then l.target = t end
  return l
end

function Code(c)
  local s = c.text
  local doc = s:match("^docs/([%w%-_]+)%.md$")
  if doc and mds[doc] then
    return pandoc.Link({c}, docroot .. doc .. ".html")
  end
  if s == "README.md" then return pandoc.Link({c}, docroot .. "../README.html") end
  if s == "CHANGELOG.md" and os.getenv("NF_DOCS_CHANGELOG") == "1" then
    return pandoc.Link({c}, docroot .. "../CHANGELOG.html")
  end
  local fn = s:match("^(nf_[%w_]+)%(?%)?$") or s:match("^(nf_[%w_]+)%(")
  if fn and funcs[fn] then
    return pandoc.Link({c}, manroot .. funcs[fn] .. ".3.html")
  end
  return c
end

return {{Meta = Meta}, {Link = Link, Code = Code}}
'''
tmp = os.path.join(OUT, '.tmp')
os.makedirs(tmp, exist_ok=True)
lua = os.path.join(tmp, 'links.lua')
write(lua, LUA)
write(os.path.join(tmp, 'funcs'), ''.join('%s %s\n' % (n, m) for n, (s, m) in pages.items() if s == '3'))
guides = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'docs')) if f.endswith('.md'))
write(os.path.join(tmp, 'mds'), '\n'.join(guides) + '\n')
env = dict(os.environ, NF_DOCS_FUNCS=os.path.join(tmp, 'funcs'), NF_DOCS_MDS=os.path.join(tmp, 'mds'),
           NF_DOCS_CHANGELOG='1' if os.path.exists(os.path.join(ROOT, 'CHANGELOG.md')) else '0')

def title_of(md):
    for line in open(md):
        if line.startswith('# '):
            return line[2:].strip().replace('`', '')
    return os.path.basename(md)

def render_md(src, dst):
    out_dir = os.path.dirname(dst)
    os.makedirs(out_dir, exist_ok=True)
    rel = lambda p: os.path.relpath(p, out_dir)
    before = os.path.join(tmp, 'nav.html')
    write(before, '<nav class="top"><a href="%s">netframe documentation</a></nav>\n' % rel(os.path.join(OUT, 'index.html')))
    run(['pandoc', '--from', 'gfm', '--to', 'html5', '--standalone', '--lua-filter', lua,
         '--metadata', 'pagetitle=' + title_of(src),
         '--metadata', 'nf_manroot=' + rel(os.path.join(OUT, 'man', 'man3')) + '/',
         '--metadata', 'nf_docroot=' + rel(os.path.join(OUT, 'docs')) + '/',
         '--css', rel(os.path.join(OUT, 'style.css')), '--include-before-body', before,
         '--output', dst, src], env=env)

render_md(os.path.join(ROOT, 'README.md'), os.path.join(OUT, 'README.html'))
for g in guides:
    render_md(os.path.join(ROOT, 'docs', g + '.md'), os.path.join(OUT, 'docs', g + '.html'))
changelog = os.path.join(ROOT, 'CHANGELOG.md')
if os.path.exists(changelog):
    render_md(changelog, os.path.join(OUT, 'CHANGELOG.html'))

# ---- the index ----------------------------------------------------------------
def header_of(name):
    src = open(os.path.join(MAN, 'man3', name + '.3')).read()
    m = re.search(r'#include <netframe/([a-z_]+\.h)>', src)
    return m.group(1) if m else ''

o = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8"/>',
     '<meta name="viewport" content="width=device-width, initial-scale=1.0"/>',
     '<title>netframe documentation</title><link rel="stylesheet" href="style.css"/></head><body>',
     '<h1>netframe documentation</h1>',
     '<p>A completion-based network library for Linux (io_uring, epoll). '
     'Start with <a href="man/man7/netframe.7.html">netframe(7)</a> and the '
     '<a href="README.html">README</a>\'s echo server.</p>',
     '<h2>Guides</h2><ul class="pages">',
     '<li><a href="README.html">README</a> <span class="brief">- %s</span></li>' % html.escape(title_of(os.path.join(ROOT, 'README.md')))]
for g in guides:
    o.append('<li><a href="docs/%s.html">%s</a> <span class="brief">- %s</span></li>'
             % (g, g, html.escape(title_of(os.path.join(ROOT, 'docs', g + '.md')))))
if os.path.exists(changelog):
    o.append('<li><a href="CHANGELOG.html">CHANGELOG</a></li>')
o.append('</ul>')
o.append('<h2>Overview</h2><ul class="pages"><li><a href="man/man7/netframe.7.html">netframe(7)</a> '
         '<span class="brief">- the layers, threading, buffers, errors, limits, where to start</span></li></ul>')
nfuncs = sum(1 for s, _ in pages.values() if s == '3')
o.append('<h2>API reference</h2><p>%d functions on %d pages, by header.</p>'
         % (nfuncs, sum(1 for s, _, _ in mains if s == '3')))
by_header = {}
for sec, name, nameline in mains:
    if sec == '3':
        by_header.setdefault(header_of(name), []).append((name, nameline))
for h in sorted(by_header):
    o.append('<h3>&lt;netframe/%s&gt;</h3><ul class="pages">' % h)
    for name, nameline in by_header[h]:
        funcs, _, brief = nameline.partition(' - ')
        links = ', '.join('<a href="man/man3/%s.3.html"><code>%s</code></a>' % (f, f)
                          for f in (x.strip() for x in funcs.split(',')))
        o.append('<li>%s <span class="brief">- %s</span></li>' % (links, html.escape(brief)))
    o.append('</ul>')
o.append('</body></html>')
write(os.path.join(OUT, 'index.html'), '\n'.join(o) + '\n')
write(os.path.join(OUT, 'style.css'), CSS.lstrip())
for f in os.listdir(tmp):
    os.remove(os.path.join(tmp, f))
os.rmdir(tmp)
print('make_docs: %s/index.html: %d man pages (%d functions), %d guides'
      % (os.path.relpath(OUT, os.getcwd()), len(mains), nfuncs, len(guides) + 1))
