// Styles of <mfe-accounts>, adopted into its shadow root.
export const styles = `
:host { display: block; font-family: system-ui, sans-serif; color: #1f2937; }
section { border: 1px solid #d1d5db; border-radius: 8px; padding: 1rem 1.25rem; background: #fff; }
h2 { margin: 0 0 0.75rem; font-size: 1.25rem; color: #1d4ed8; }
table { border-collapse: collapse; width: 100%; margin-bottom: 0.75rem; }
th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid #e5e7eb; }
tfoot th, tfoot td { font-weight: 600; border-bottom: none; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, monospace; font-size: 0.85em; }
button { font: inherit; padding: 0.35rem 0.8rem; border-radius: 6px; border: 1px solid #1d4ed8;
  background: #eff6ff; color: #1d4ed8; cursor: pointer; }
button:hover { background: #dbeafe; }
`;
