// Test vector 17-provides-needs: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("db")
  .run("start-db")
  .provides("postgres")
  .providesValue("db_url", "postgres://localhost:5432/app");
p.task("migrate").run("migrate").needs("db_url");
p.task("test").run("test").needs("postgres").needs("db_url").after("migrate");
p.emit();
