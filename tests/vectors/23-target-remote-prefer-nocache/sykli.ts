// Test vector 23-target-remote-prefer-nocache: must print expected.json byte for byte with --emit.
import { Pipeline } from "../../../sdk-ts/src/index.ts";

const p = new Pipeline();
p.task("a").run("make").target("docker");
p.task("b").run("make").remote();
p.task("c").run("make").prefer("remote");
p.task("d").run("make").prefer("local").noCache();
p.task("e").run("make").inputs("**/*.c").noCache().remote().prefer("remote").target("k8s");
p.emit();
