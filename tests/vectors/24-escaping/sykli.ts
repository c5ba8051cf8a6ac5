// Test vector 24-escaping: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("html <b>&</b>")
  .run("echo \"<script>alert('x')</script>\" && cat C:\\dir")
  .env("CTRL", "\x01\x1f\x7f")
  .env("BF", "\b\f")
  .env("SEP", "line\u2028para\u2029end")
  .env("UNICODE", "héllo wörld ✓ 日本 😀")
  .env("WS", "tab\tnewline\ncr\r")
  .env("QUOTE", 'say "hi" \\ bye');
p.emit();
