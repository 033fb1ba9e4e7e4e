/** The report page's inline stylesheet: system fonts only, no external references. */
export const CSS = `
:root{--fg:#1e2430;--muted:#5d6676;--bg:#f3f4f7;--card:#fff;--line:#e3e6eb;--accent:#7c3aed;--warn:#fff7e6;--warn-line:#f3c46b}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 20px 40px}
header{margin:0 0 18px}
h1{font-size:26px;line-height:1.25;margin:0 0 4px}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:15px;margin:14px 0 8px}
h2+h3{margin-top:4px}
.meta{color:var(--muted);margin:0;font-size:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:0 0 18px;min-width:0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:18px;margin:0 0 18px}
.grid>.card{margin:0}
.verdict{border-left:4px solid var(--accent)}
.verdict ul{margin:0;padding:0;list-style:none}
.verdict li{margin:0 0 6px;padding-left:18px;position:relative;font-size:14px}
.verdict li .swatch{position:absolute;left:0;top:6px}
.warnings{background:var(--warn);border-color:var(--warn-line)}
.warnings ul{margin:0;padding-left:20px}
.note{color:var(--muted);font-size:13px;margin:8px 0 0}
.table-wrap{overflow-x:auto;margin:0 -4px 6px;padding:0 4px}
tr.chosen td{background:#f3ecff}
ul.recommend li{margin:4px 0}
td.wrap{white-space:normal;min-width:150px}
.note+.table-wrap,.table-wrap+.table-wrap{margin-top:20px}
table{border-collapse:collapse;width:100%;font-size:13.5px}
caption{text-align:left;color:var(--muted);font-size:13px;padding:0 0 4px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap;vertical-align:top}
th{white-space:normal;font-weight:600;color:var(--muted);font-size:12.5px;text-transform:uppercase;letter-spacing:.02em;border-bottom:2px solid var(--line)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.path{white-space:normal;overflow-wrap:anywhere;color:var(--muted);font-size:12.5px;min-width:160px}
td.run{font-weight:600}
td.good{color:#047857;font-weight:600}
td.bad{color:#b91c1c}
tbody tr:hover{background:#fafbfc}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:7px;vertical-align:baseline}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e5e7eb}
.badge-done{background:#d1fae5;color:#065f46}
.badge-interrupted{background:#fef3c7;color:#92400e}
.badge-diverged{background:#fee2e2;color:#991b1b}
.badge-running{background:#dbeafe;color:#1e40af}
.chart{position:relative;height:320px;width:100%}
.chart-tall{height:380px}
.muted{color:var(--muted);font-weight:400}
.verdict h3 .swatch{vertical-align:0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,230px),1fr));gap:12px;margin:0 0 14px}
.kpi{background:#f8f7fc;border:1px solid #e7e3f3;border-radius:8px;padding:10px 14px}
.kpi-label{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}
.kpi-value{font-size:26px;font-weight:700;line-height:1.25;margin:2px 0;font-variant-numeric:tabular-nums}
.kpi-sub{font-size:12.5px;color:var(--muted)}
.kpi-good .kpi-value{color:#047857}
.kpi-bad .kpi-value{color:#b91c1c}
.toolbar{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:0 0 8px;font-size:13px;color:var(--muted)}
.seg{display:inline-flex;border:1px solid var(--line);border-radius:6px;overflow:hidden}
.seg button{font:inherit;font-size:12.5px;border:0;background:#fff;color:var(--fg);padding:3px 10px;cursor:pointer}
.seg button+button{border-left:1px solid var(--line)}
.seg button[aria-pressed=true]{background:var(--accent);color:#fff}
dl.defs{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0;font-size:13.5px}
dl.defs dt{font-weight:600}
dl.defs dd{margin:0;color:var(--muted)}
footer{color:var(--muted);font-size:12.5px;text-align:center;margin-top:8px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
@media (max-width:640px){main{padding:16px 10px}.card{padding:14px 12px}h1{font-size:22px}dl.defs{grid-template-columns:1fr}}
@media print{body{background:#fff}.card{break-inside:avoid;border-color:#ccc}.toolbar{display:none}}
`;
