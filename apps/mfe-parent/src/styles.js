// Styles of <mfe-parent> (Lit adopts them into the shadow root).
import { css } from 'lit';

export const styles = css`
  :host { display: block; min-height: 100vh; font-family: system-ui, sans-serif; color: #111827;
    background: #f3f4f6; }
  header { display: flex; align-items: center; gap: 1rem; padding: 0.75rem 1.5rem;
    background: #1e3a8a; color: #fff; }
  .title { margin: 0; font-size: 1.35rem; flex: 1; }
  .user { font-size: 0.9rem; }
  .sign-out { font: inherit; font-size: 0.9rem; padding: 0.3rem 0.8rem; border-radius: 6px;
    border: 1px solid #bfdbfe; background: transparent; color: #fff; cursor: pointer; }
  .sign-out:hover { background: #1d4ed8; }
  nav { display: flex; gap: 0.25rem; padding: 0 1.5rem; background: #dbeafe; border-bottom: 1px solid #bfdbfe; }
  nav a { padding: 0.6rem 0.9rem; color: #1e3a8a; text-decoration: none; border-bottom: 3px solid transparent; }
  nav a:hover, nav a.active { border-bottom-color: #1e3a8a; }
  main { padding: 1.5rem; }
  .apps { display: grid; gap: 1.5rem; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); align-items: start; }
  .apps[hidden] { display: none; }
  ::slotted([data-mfe-active]) { outline: 3px solid #f59e0b; outline-offset: 4px; border-radius: 8px; }
  .login { max-width: 22rem; margin: 3rem auto; padding: 1.5rem; display: flex; flex-direction: column;
    gap: 0.75rem; background: #fff; border: 1px solid #d1d5db; border-radius: 10px; }
  .login h2 { margin: 0; font-size: 1.2rem; }
  .hint { margin: 0; color: #4b5563; font-size: 0.9rem; }
  label { display: flex; flex-direction: column; gap: 0.25rem; font-size: 0.9rem; }
  input { font: inherit; padding: 0.4rem 0.6rem; border: 1px solid #9ca3af; border-radius: 6px; }
  .login button { font: inherit; padding: 0.5rem; border-radius: 6px; border: none; background: #1d4ed8;
    color: #fff; cursor: pointer; }
  .login button[disabled] { opacity: 0.6; cursor: progress; }
  .error { margin: 0; padding: 0.5rem 0.75rem; border-radius: 6px; background: #fef2f2; color: #b91c1c;
    border: 1px solid #fecaca; }
  .notice { margin-bottom: 1rem; }
`;
