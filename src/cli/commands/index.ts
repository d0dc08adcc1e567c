import { build } from "./build";
import { images, inspect, prune, rmi, tag } from "./store";
import { pull, push } from "./transfer";
import { load, save } from "./archive";
import { login, logout } from "./login";
import { merge } from "./merge";
import { sandbox } from "./sandbox";
import { apply, del, plan } from "./cluster";
import { check, exec, reset, unlock } from "./cluster-ops";
import { convert } from "./convert";
import { backup, restore } from "./backup";

import type { Command } from "./command";

export type { Command } from "./command";

export const commands: Record<string, Command> = {
  build,
  images,
  inspect,
  tag,
  rmi,
  prune,
  pull,
  push,
  save,
  load,
  login,
  logout,
  merge,
  sandbox,
  apply,
  plan,
  delete: del,
  reset,
  check,
  exec,
  unlock,
  convert,
  backup,
  restore,
};
