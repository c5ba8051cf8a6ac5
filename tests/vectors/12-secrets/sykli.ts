// Test vector 12-secrets: must print expected.json byte for byte with --emit.
import { Pipeline, fromEnv, fromFile } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("deploy")
  .run("./deploy.sh")
  .secret("API_TOKEN")
  .secrets("AWS_KEY", "AWS_SECRET")
  .secret("NPM_TOKEN")
  .secretFrom("DB_PASS", fromEnv("PROD_DB_PASSWORD"))
  .secretFrom("TLS_CERT", fromFile("/etc/certs/tls.pem"));
p.emit();
