"""How the HTML report looks, in light and dark: one stylesheet of CSS custom properties.

Colours are custom properties on `.llmguard-report`. Inside JupyterLab they take the theme's own
variables (`--jp-ui-font-color1`, `--jp-layout-color0`, ...), so the report follows Light, Dark or
any other theme; VS Code's notebook variables come next; elsewhere the fallbacks apply, and a
`prefers-color-scheme: dark` block swaps them. Text is drawn only in the foreground and muted
colours, never in an accent colour, so every theme that gives readable text gives a readable report;
alerts and table headers are tinted with translucent colours that work on either background.

The report is responsive: it never needs more width than the screen gives it. Charts are SVG with
a viewBox that scale down, figures sit in a grid that folds into one column, and wide tables
scroll inside their own box instead of widening the page.
"""

from __future__ import annotations

CSS = """
.llmguard-report{
--lg-fg:var(--jp-ui-font-color1,var(--vscode-editor-foreground,#1d2330));
--lg-muted:var(--jp-content-font-color2,var(--vscode-descriptionForeground,#4a5363));
--lg-bg:var(--jp-layout-color0,var(--vscode-editor-background,#ffffff));
--lg-line:var(--jp-border-color2,#d9dde5);
--lg-tint:rgba(128,128,128,.12);
--lg-warn:rgba(239,177,24,.16);
--lg-critical:rgba(208,59,47,.16);
--lg-font:var(--jp-ui-font-family,system-ui,-apple-system,"Segoe UI",sans-serif);
color:var(--lg-fg);background:var(--lg-bg);font:13px/1.45 var(--lg-font);
max-width:1100px;box-sizing:border-box;padding:8px 12px;overflow-wrap:anywhere;min-width:0}
@media (prefers-color-scheme:dark){.llmguard-report{
--lg-fg:var(--jp-ui-font-color1,var(--vscode-editor-foreground,#e6e9ef));
--lg-muted:var(--jp-content-font-color2,var(--vscode-descriptionForeground,#b3bac6));
--lg-bg:var(--jp-layout-color0,var(--vscode-editor-background,#15181d));
--lg-line:var(--jp-border-color2,#3a414d)}}
.llmguard-report *{box-sizing:border-box}
.llmguard-report h2{font-size:18px;margin:4px 0 2px;color:var(--lg-fg)}
.llmguard-report h3{font-size:14px;margin:20px 0 6px;color:var(--lg-fg)}
.llmguard-report .meta{color:var(--lg-muted);margin-bottom:10px}
.llmguard-report .note{color:var(--lg-muted);margin:2px 0 8px}
.llmguard-report .tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px;margin:8px 0}
.llmguard-report .tile{background:var(--lg-tint);border-left:3px solid #4269d0;padding:6px 10px;min-width:0}
.llmguard-report .tile .l{color:var(--lg-muted);font-size:12px}
.llmguard-report .tile .v{font-size:20px;font-weight:600;line-height:1.3;white-space:nowrap}
.llmguard-report .tile .d{color:var(--lg-muted);font-size:12px}
.llmguard-report .scroll{overflow-x:auto;max-width:100%;margin:4px 0 10px}
.llmguard-report table{border-collapse:collapse;color:var(--lg-fg);margin:0;font-size:13px;table-layout:auto}
.llmguard-report th,.llmguard-report td{padding:3px 8px;border-bottom:1px solid var(--lg-line);text-align:right;white-space:nowrap}
.llmguard-report th.k,.llmguard-report td.k{text-align:left}
.llmguard-report th{background:var(--lg-tint);font-weight:600}
.llmguard-report h3 .note{font-weight:400;margin-left:6px}
.llmguard-report td.msg{text-align:left;white-space:normal;min-width:14em;max-width:36em}
.llmguard-report .alerts{margin:8px 0;padding:0;list-style:none}
.llmguard-report .alert{border-left:4px solid #efb118;background:var(--lg-warn);padding:6px 10px;margin:4px 0}
.llmguard-report .alert.critical{border-color:#d03b2f;background:var(--lg-critical)}
.llmguard-report .alert .next{margin-top:2px}
.llmguard-report .ok{border-left:4px solid #3ca951;padding:2px 10px}
.llmguard-report .charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr));gap:18px}
.llmguard-report figure{margin:0;min-width:0}
.llmguard-report figcaption{font-weight:600;margin-bottom:4px}
.llmguard-report svg{display:block;max-width:100%;height:auto}
.llmguard-report svg text{font:11px var(--lg-font);fill:var(--lg-fg)}
.llmguard-report svg .axis{stroke:var(--lg-muted)}
.llmguard-report svg .grid{stroke:var(--lg-line)}
.llmguard-report svg .line{fill:none;stroke-width:2}
.llmguard-report .legend{margin:2px 0 12px}
.llmguard-report .legend span{display:inline-block;margin-right:10px}
.llmguard-report .legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
"""

# The standalone file's own page: its background follows the reader's colour scheme.
PAGE_CSS = """
:root{color-scheme:light dark}
html,body{margin:0;padding:0}
body{background:#ffffff;color:#1d2330}
body>.llmguard-report{margin:0 auto;padding:16px}
@media (prefers-color-scheme:dark){body{background:#15181d;color:#e6e9ef}}
"""
