/**
 * The status page at GET /: one self-contained HTML document (inline CSS and JS, no build step,
 * no request to any other origin: no fonts, CDNs or images by URL). It polls `/status` every
 * {@link REFRESH_MS} ms and renders the role and PeerId, whether Global is reachable, the cache
 * (a usage bar, hit rate, values), bytes in and out by source, the swarm (on a Local: bytes from
 * peers, from Global and served to peers, peers used, bad ranges; on Global: the tracker and the
 * egress cap), the recent transfers, and on Global the connected Locals. A person can drop a file to put it (`POST /ipfs`) and look up a
 * CID (`HEAD /ipfs/{cid}`).
 *
 * The page is a constant, so its inline script and style are allowed by their SHA-256 hashes in
 * {@link STATUS_PAGE_CSP} (no 'unsafe-inline', no nonce to thread through the server). The
 * script only ever sets text (textContent), never HTML, so a CID or PeerId cannot inject markup.
 */
import { createHash } from 'node:crypto'

/** How often the page re-reads /status. */
export const REFRESH_MS = 2000

const STYLE = `
:root{--bg:#f6f7f9;--card:#fff;--fg:#1c2330;--muted:#5d6878;--line:#e2e6ec;--accent:#2f6fde;--ok:#1f9d55;--bad:#d64545;--bar:#e8ecf2;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
@media (prefers-color-scheme:dark){:root{--bg:#0f1318;--card:#171c23;--fg:#e4e8ee;--muted:#8d97a5;--line:#262d37;--accent:#5b93f5;--ok:#3cc47c;--bad:#f06b6b;--bar:#242b35}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif}
header{display:flex;flex-wrap:wrap;align-items:center;gap:12px;padding:16px 24px;border-bottom:1px solid var(--line);background:var(--card)}
h1{font-size:18px;margin:0;font-weight:650;letter-spacing:.2px}
h2{font-size:13px;margin:0 0 10px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.6px}
.badge{padding:2px 10px;border-radius:999px;background:var(--accent);color:#fff;font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.5px}
.mono{font-family:var(--mono);font-size:12.5px;word-break:break-all}
.muted{color:var(--muted)}
.spacer{flex:1}
main{padding:20px 24px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));max-width:1280px;margin:0 auto}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px}
.wide{grid-column:1/-1}
@media (min-width:1100px){.half{grid-column:span 2}}
.state{font-size:19px;font-weight:650}
.src{white-space:pre-line;color:var(--muted);font-size:12.5px}
.big{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:8px;background:var(--muted)}
.dot.ok{background:var(--ok)}.dot.bad{background:var(--bad)}
.bar{height:10px;background:var(--bar);border-radius:5px;overflow:hidden;margin:10px 0 6px}
.bar>div{height:100%;width:0;background:var(--accent);transition:width .4s}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:12px}
td.cid{max-width:340px;overflow:hidden;text-overflow:ellipsis}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 14px;margin:0}dt{color:var(--muted)}dd{margin:0;font-variant-numeric:tabular-nums}
#drop{border:2px dashed var(--line);border-radius:10px;padding:22px;text-align:center;color:var(--muted);cursor:pointer;transition:border-color .2s,background .2s}
#drop.over{border-color:var(--accent);background:var(--bar)}
input[type=text],input[type=password]{width:100%;padding:8px 10px;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg);font-family:var(--mono);font-size:12.5px}
button{white-space:nowrap;padding:8px 14px;border:0;border-radius:8px;background:var(--accent);color:#fff;font-weight:600;cursor:pointer}
.row{display:flex;gap:8px;margin-top:8px}
.result{margin-top:10px;min-height:20px}
.err{color:var(--bad)}
#global-addr,#swarm-addrs{white-space:pre-line;margin-top:8px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;margin-top:10px}
.tiles .big{font-size:20px}
#banner{display:none;padding:8px 24px;background:var(--bad);color:#fff;font-weight:600}
#banner.show{display:block}
.hidden{display:none}
`

const SCRIPT = `
(function(){
'use strict';
var $=function(id){return document.getElementById(id)};
var token='';
function fmtBytes(n){if(n==null)return'\\u2013';var u=['B','KiB','MiB','GiB','TiB'];var i=0;while(n>=1024&&i<u.length-1){n/=1024;i++}var t=i===0?String(n):n.toFixed(n<10?2:n<100?1:0);if(t.indexOf('.')>=0)t=t.replace(/0+$/,'').replace(/[.]$/,'');return t+' '+u[i]}
function fmtRate(n){return n==null?'\\u2013':fmtBytes(n)+'/s'}
function fmtDur(s){s=Math.floor(s);var d=Math.floor(s/86400),h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60);return(d?d+'d ':'')+(d||h?h+'h ':'')+m+'m '+(s%60)+'s'}
function sum(o){var n=0;for(var k in o)n+=o[k];return n}
function bySource(o){var p=[];for(var k in o)p.push(k+': '+fmtBytes(o[k]));return p.length?p.join('\\n'):'none yet'}
function text(id,v){var e=$(id);if(e)e.textContent=v}
function cell(tr,v,cls){var td=document.createElement('td');td.textContent=v;if(cls)td.className=cls;tr.appendChild(td);return td}
function cidLink(td,cid){td.textContent='';if(!cid)return;var a=document.createElement('a');a.href='/ipfs/'+encodeURIComponent(cid);a.textContent=cid;a.className='mono';td.appendChild(a)}
function render(s){
  $('banner').classList.remove('show');
  text('role',s.role);text('peer-id',s.peerId);text('version','v'+s.version);text('uptime','up '+fmtDur(s.uptimeSeconds));
  document.title='dstore '+s.role+' \\u00b7 '+s.peerId.slice(-8);
  var isLocal=s.role==='local';
  document.querySelectorAll('.local-only').forEach(function(e){e.classList.toggle('hidden',!isLocal)});
  document.querySelectorAll('.global-only').forEach(function(e){e.classList.toggle('hidden',isLocal)});
  var dot=$('global-dot');
  if(isLocal){
    var up=s.global.connected;dot.className='dot '+(up?'ok':'bad');
    text('global-state',up?'Global reachable':'Global unreachable');
    text('global-addr',(s.global.addrs||[]).join('\\n'));
    var c=s.cache;var pct=c.limit>0?Math.min(100,100*c.bytes/c.limit):0;
    $('cache-fill').style.width=pct.toFixed(1)+'%';
    text('cache-bytes',fmtBytes(c.bytes)+' of '+fmtBytes(c.limit)+' ('+pct.toFixed(1)+'%)');
    text('hit-rate',c.hitRate==null?'\\u2013':(100*c.hitRate).toFixed(1)+'%');
    text('hits',String(c.hits));text('misses',String(c.misses));text('evictions',String(c.evictions));
    text('values',String(c.entries));text('values-label','values cached');
  }else{
    dot.className='dot ok';text('global-state','This is Global');
    text('global-addr',(s.multiaddrs||[]).join('\\n'));
    text('values',String(s.store.values));text('values-label','values stored, '+fmtBytes(s.store.bytes));
    text('store-bytes',fmtBytes(s.store.bytes));
    text('locals-count',String(s.locals.count));
    var lb=$('locals');lb.textContent='';
    s.locals.connected.forEach(function(l){var tr=document.createElement('tr');cell(tr,l.peerId,'mono');cell(tr,l.addr,'mono');cell(tr,new Date(l.since).toLocaleTimeString());lb.appendChild(tr)});
    if(!s.locals.connected.length){var tr=document.createElement('tr');var td=cell(tr,'No Local connected','muted');td.colSpan=3;lb.appendChild(tr)}
  }
  var w=s.swarm;
  if(w&&isLocal){
    text('swarm-state',!w.enabled?'off':w.addrs.length?'on, serving other Locals':'on, serving nobody (--listen off)');
    $('swarm-dot').className='dot '+(w.enabled?'ok':'');
    text('swarm-from-peers',fmtBytes(w.bytesFromPeers));text('swarm-from-global',fmtBytes(w.bytesFromGlobal));
    var got=w.bytesFromPeers+w.bytesFromGlobal;text('swarm-peer-share',got>0?'('+(100*w.bytesFromPeers/got).toFixed(1)+'%)':'');
    text('swarm-to-peers',fmtBytes(w.bytesToPeers));text('swarm-peers-used',String(w.peersUsed));
    text('swarm-bad-ranges',String(w.badRanges));$('swarm-bad-ranges').className='big'+(w.badRanges>0?' err':'');
    text('swarm-peers-dropped',String(w.peersDropped));text('swarm-downloads',w.active?w.downloads+' + '+w.active+' now':String(w.downloads));
    text('swarm-addrs',w.addrs.join('\\n'));
  }else if(w){
    text('tracker-values',String(w.values));text('tracker-sources',String(w.sources));
    text('tracker-bad-reports',String(w.badPeerReports));
    text('egress-limit',w.egressLimit==null?'none':fmtRate(w.egressLimit));
    text('egress-wait',(w.egressWaitMs/1000).toFixed(1)+' s');
  }
  text('bytes-in',fmtBytes(sum(s.bytes.received)));text('bytes-in-src',bySource(s.bytes.received));
  text('bytes-out',fmtBytes(sum(s.bytes.served)));text('bytes-out-src',bySource(s.bytes.served));
  text('verify-failures',String(s.verificationFailures));
  var tb=$('transfers');tb.textContent='';
  s.recentTransfers.forEach(function(t){var tr=document.createElement('tr');cell(tr,new Date(t.at).toLocaleTimeString());cell(tr,t.op+(t.ok?'':' (failed)'),t.ok?'':'err');cidLink(cell(tr,'','cid'),t.cid);cell(tr,fmtBytes(t.bytes));cell(tr,t.source);cell(tr,fmtRate(t.bytesPerSecond));tb.appendChild(tr)});
  if(!s.recentTransfers.length){var tr=document.createElement('tr');var td=cell(tr,'No transfers yet','muted');td.colSpan=6;tb.appendChild(tr)}
  text('updated','updated '+new Date().toLocaleTimeString());
}
function refresh(){
  fetch('/status',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.json()}).then(render).catch(function(e){text('banner','Cannot read /status: '+e.message);$('banner').classList.add('show')});
}
function authHeaders(h){if(token)h['Authorization']='Bearer '+token;return h}
function errorOf(r){return r.json().then(function(j){return j&&j.error?j.error.message:('HTTP '+r.status)},function(){return'HTTP '+r.status})}
function put(file){
  var out=$('put-result');out.className='result muted';out.textContent='Storing '+file.name+' ('+fmtBytes(file.size)+')\\u2026';
  var t0=performance.now();
  fetch('/ipfs',{method:'POST',body:file,headers:authHeaders({'Content-Type':'application/octet-stream'})}).then(function(r){
    if(r.status===401){$('token-row').classList.remove('hidden')}
    if(!r.ok)return errorOf(r).then(function(m){throw new Error(m)});
    return r.json();
  }).then(function(j){
    var secs=(performance.now()-t0)/1000;out.className='result';out.textContent='';
    var a=document.createElement('a');a.id='put-cid';a.className='mono';a.href='/ipfs/'+encodeURIComponent(j.cid);a.textContent=j.cid;
    out.appendChild(document.createTextNode(file.name+' \\u2192 '));out.appendChild(a);
    out.appendChild(document.createTextNode(' ('+fmtBytes(j.size)+(secs>0.001?', '+fmtRate(j.size/secs):'')+')'));
    refresh();
  }).catch(function(e){out.className='result err';out.textContent='Put failed: '+e.message});
}
function lookup(){
  var cid=$('cid-input').value.trim();var out=$('lookup-result');
  if(!cid){out.className='result err';out.textContent='Enter a CID';return}
  out.className='result muted';out.textContent='Looking up\\u2026';
  var href='/ipfs/'+encodeURIComponent(cid);
  fetch(href,{method:'HEAD',cache:'no-store'}).then(function(r){
    out.textContent='';
    if(r.ok){
      out.className='result';
      var cached=r.headers.get('X-Dstore-Cached');
      out.appendChild(document.createTextNode('Found: '+fmtBytes(Number(r.headers.get('Content-Length')))+(cached==='true'?' (cached here)':cached==='false'?' (on Global, not cached here)':'')+' \\u00b7 '));
      var a=document.createElement('a');a.href=href;a.id='lookup-link';a.textContent='download';out.appendChild(a);
    }else if(r.status===404){out.className='result err';out.textContent='Not found'}
    else if(r.status===400){out.className='result err';out.textContent='Not a dstore CID (raw BLAKE3)'}
    else{out.className='result err';out.textContent='HTTP '+r.status}
  }).catch(function(e){out.className='result err';out.textContent='Lookup failed: '+e.message});
}
var drop=$('drop'),input=$('file-input');
drop.addEventListener('click',function(){input.click()});
drop.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();input.click()}});
drop.addEventListener('dragover',function(e){e.preventDefault();drop.classList.add('over')});
drop.addEventListener('dragleave',function(){drop.classList.remove('over')});
drop.addEventListener('drop',function(e){e.preventDefault();drop.classList.remove('over');if(e.dataTransfer&&e.dataTransfer.files.length)put(e.dataTransfer.files[0])});
input.addEventListener('change',function(){if(input.files.length)put(input.files[0]);input.value=''});
$('token').addEventListener('input',function(e){token=e.target.value.trim()});
$('lookup-form').addEventListener('submit',function(e){e.preventDefault();lookup()});
refresh();setInterval(refresh,${REFRESH_MS});
})();
`

/** The status page (see the module comment). */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>dstore</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>dstore</h1><span class="badge" id="role">&hellip;</span>
  <span class="mono" id="peer-id" title="PeerId"></span>
  <span class="spacer"></span>
  <span class="muted" id="version"></span><span class="muted" id="uptime"></span><span class="muted" id="updated"></span>
</header>
<div id="banner"></div>
<main>
  <section class="card">
    <h2>Global</h2>
    <div class="state"><span class="dot" id="global-dot"></span><span id="global-state">&hellip;</span></div>
    <div class="mono muted" id="global-addr"></div>
  </section>
  <section class="card local-only">
    <h2>Cache</h2>
    <div class="bar"><div id="cache-fill"></div></div>
    <div id="cache-bytes" class="muted"></div>
    <dl><dt>hit rate</dt><dd id="hit-rate">&ndash;</dd><dt>hits / misses</dt><dd><span id="hits">0</span> / <span id="misses">0</span></dd><dt>evictions</dt><dd id="evictions">0</dd></dl>
  </section>
  <section class="card">
    <h2>Values</h2>
    <div class="big" id="values">&ndash;</div>
    <div class="muted" id="values-label"></div>
  </section>
  <section class="card global-only hidden">
    <h2>Connected Locals</h2>
    <div class="big" id="locals-count">0</div>
    <div class="muted">store <span id="store-bytes"></span></div>
  </section>
  <section class="card">
    <h2>Traffic</h2>
    <dl>
      <dt>in</dt><dd><b id="bytes-in">&ndash;</b><div class="src" id="bytes-in-src"></div></dd>
      <dt>out</dt><dd><b id="bytes-out">&ndash;</b><div class="src" id="bytes-out-src"></div></dd>
      <dt>failed verification</dt><dd id="verify-failures">0</dd>
    </dl>
  </section>
  <section class="card wide local-only" id="swarm">
    <h2>Swarm</h2>
    <div class="state"><span class="dot" id="swarm-dot"></span><span id="swarm-state">&hellip;</span></div>
    <div class="tiles">
      <div><div class="big" id="swarm-from-peers">&ndash;</div><div class="muted">from peers <span id="swarm-peer-share"></span></div></div>
      <div><div class="big" id="swarm-from-global">&ndash;</div><div class="muted">from Global</div></div>
      <div><div class="big" id="swarm-to-peers">&ndash;</div><div class="muted">served to peers</div></div>
      <div><div class="big" id="swarm-peers-used">0</div><div class="muted">peers used</div></div>
      <div><div class="big" id="swarm-bad-ranges">0</div><div class="muted">bad ranges caught</div></div>
      <div><div class="big" id="swarm-peers-dropped">0</div><div class="muted">peers dropped</div></div>
      <div><div class="big" id="swarm-downloads">&ndash;</div><div class="muted">swarm downloads</div></div>
    </div>
    <div class="mono muted" id="swarm-addrs"></div>
  </section>
  <section class="card wide global-only hidden" id="tracker">
    <h2>Swarm tracker</h2>
    <div class="tiles">
      <div><div class="big" id="tracker-values">0</div><div class="muted">values tracked</div></div>
      <div><div class="big" id="tracker-sources">0</div><div class="muted">sources (Locals)</div></div>
      <div><div class="big" id="tracker-bad-reports">0</div><div class="muted">bad peer reports</div></div>
      <div><div class="big" id="egress-limit">&ndash;</div><div class="muted">egress cap</div></div>
      <div><div class="big" id="egress-wait">&ndash;</div><div class="muted">waited for the cap</div></div>
    </div>
  </section>
  <section class="card half">
    <h2>Put a file</h2>
    <div id="drop" tabindex="0" role="button" aria-label="Drop a file here or choose one">Drop a file here, or click to choose one</div>
    <input type="file" id="file-input" class="hidden">
    <div class="row hidden" id="token-row"><input type="password" id="token" placeholder="Bearer token (this listener needs one for writes)" autocomplete="off"></div>
    <div class="result" id="put-result"></div>
  </section>
  <section class="card half">
    <h2>Look up a CID</h2>
    <form id="lookup-form" class="row"><input type="text" id="cid-input" placeholder="bafk&hellip;" spellcheck="false" autocomplete="off"><button type="submit">Look up</button></form>
    <div class="result" id="lookup-result"></div>
  </section>
  <section class="card wide global-only hidden">
    <h2>Locals</h2>
    <table><thead><tr><th>PeerId</th><th>address</th><th>since</th></tr></thead><tbody id="locals"></tbody></table>
  </section>
  <section class="card wide">
    <h2>Recent transfers</h2>
    <table><thead><tr><th>time</th><th>op</th><th>CID</th><th>size</th><th>source</th><th>throughput</th></tr></thead><tbody id="transfers"></tbody></table>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`

/**
 * The Content-Security-Policy the server sends with {@link STATUS_PAGE_HTML}: nothing but the
 * page's own script and style (by hash), requests to its own origin, and data: images (the
 * empty favicon). No frames, no forms posting elsewhere, no <base>.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')
