/**
 * The bell's shadow DOM: static markup only — feed data is never parsed as HTML, every title and
 * body goes in through `textContent`. Colours come from `--belfry-*` custom properties, with light
 * and dark defaults that follow `prefers-color-scheme`.
 */
const STYLES = `
:host{--_fg:var(--belfry-fg,#1f2328);--_bg:var(--belfry-bg,#fff);--_muted:var(--belfry-muted,#59636e);--_border:var(--belfry-border,#d1d9e0);--_accent:var(--belfry-accent,#0969da);--_unread:var(--belfry-unread-bg,#ddf4ff);--_hover:var(--belfry-hover-bg,#f6f8fa);--_badge:var(--belfry-badge-bg,#cf222e);--_badge-fg:var(--belfry-badge-fg,#fff);position:relative;display:inline-block;color:var(--_fg);font:var(--belfry-font,14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif)}
@media (prefers-color-scheme:dark){:host{--_fg:var(--belfry-fg,#e6edf3);--_bg:var(--belfry-bg,#161b22);--_muted:var(--belfry-muted,#9198a1);--_border:var(--belfry-border,#3d444d);--_accent:var(--belfry-accent,#4493f8);--_unread:var(--belfry-unread-bg,#12263f);--_hover:var(--belfry-hover-bg,#21262d)}}
[hidden]{display:none!important}
button{font:inherit;color:inherit;background:none;border:0;cursor:pointer}
:focus-visible{outline:2px solid var(--_accent);outline-offset:2px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
[part~=button]{position:relative;display:grid;place-items:center;width:var(--belfry-size,36px);height:var(--belfry-size,36px);border-radius:50%;color:inherit}
[part~=button]:hover{background:var(--_hover)}
[part~=button] svg{width:calc(var(--belfry-size,36px)*.62);height:calc(var(--belfry-size,36px)*.62)}
[part~=badge]{position:absolute;top:0;right:0;transform:translate(25%,-15%);min-width:18px;height:18px;padding:0 5px;box-sizing:border-box;border-radius:9px;background:var(--_badge);color:var(--_badge-fg);font-size:11px;font-weight:600;line-height:18px;text-align:center}
[part~=panel]{position:absolute;right:0;top:calc(100% + 8px);z-index:var(--belfry-z-index,1000);width:var(--belfry-panel-width,min(380px,calc(100vw - 16px)));max-height:var(--belfry-panel-height,480px);display:flex;flex-direction:column;background:var(--_bg);color:var(--_fg);border:1px solid var(--_border);border-radius:var(--belfry-radius,12px);box-shadow:var(--belfry-shadow,0 8px 24px rgba(0,0,0,.18));overflow:hidden}
.l{left:0;right:auto}
header{display:flex;align-items:center;gap:8px;padding:12px 12px 8px 16px}
h2{flex:1;margin:0;font-size:1.05em}
.mark,.more,.retry,.tabs button{padding:4px 8px;border-radius:6px;color:var(--_accent)}
.mark:hover,.more:hover,.retry:hover,.x:hover,.tabs button:hover{background:var(--_hover)}
.mark:disabled{color:var(--_muted);cursor:default}
.x{width:28px;height:28px;border-radius:6px;font-size:18px;line-height:1}
.tabs{display:flex;gap:4px;padding:0 12px 8px}
.tabs button{color:var(--_fg)}
.tabs [aria-pressed=true]{background:var(--_unread);font-weight:600}
.st{margin:0;padding:16px;color:var(--_muted);text-align:center}
ul{list-style:none;margin:0;padding:0;overflow-y:auto;border-top:1px solid var(--_border)}
li+li{border-top:1px solid var(--_border)}
[part~=item]{display:grid;grid-template-columns:10px 1fr;column-gap:8px;width:100%;padding:10px 16px 10px 8px;text-align:left}
[part~=item]:hover{background:var(--_hover)}
[part~=item]>span:not(.d),[part~=item]>time{grid-column:2}
.d{grid-row:1;width:8px;height:8px;margin-top:.5em;border-radius:50%}
[part~=unread]{background:var(--_unread)}
[part~=unread] .d{background:var(--_accent)}
.t{font-weight:600;overflow-wrap:anywhere}
.b{overflow-wrap:anywhere}
time{color:var(--_muted);font-size:.86em}
.more{margin:8px auto}
.retry{margin:-8px auto 12px}
`;

const BELL = `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M18 16v-5a6 6 0 0 0-12 0v5l-2 2h16zM10 20.5a2 2 0 0 0 4 0" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"/></svg>`;

export const TEMPLATE = `<style>${STYLES}</style><button part="button" type="button" aria-haspopup="dialog" aria-expanded="false" aria-controls="panel">${BELL}<span part="badge" aria-hidden="true" hidden></span></button><div part="panel" id="panel" role="dialog" aria-labelledby="title" tabindex="-1" hidden><header><h2 id="title"></h2><button type="button" class="mark"></button><button type="button" class="x">×</button></header><div class="tabs" role="group"><button type="button" class="all" aria-pressed="true"></button><button type="button" class="un" aria-pressed="false"></button></div><p class="st" hidden></p><button type="button" class="retry" hidden></button><ul hidden></ul><button type="button" class="more" hidden></button></div><div class="sr" aria-live="polite"></div>`;
