import { registerCombat } from './gridworld/combat';
import { registerLbf } from './gridworld/lbf';
import { registerPursuit } from './gridworld/pursuit';
import { registerSpread } from './gridworld/spread';
import { registerSpreadHidden } from './gridworld/spread-hidden';
import { registerManipulationEnvs } from './manipulation/register';
import { registerMultiArmEnvs } from './manipulation/register-multi-arm';
import { registerSplitEnvs } from './manipulation/register-splits';
import { registerPointRobot } from './navigation/point-robot';
import { registerResource } from './navigation/resource';

let registered = false;

/** Registers every built-in env family once (safe to call from any thread, any number of times). */
export function registerBuiltinEnvs(): void {
  if (registered) return;
  registered = true;
  registerLbf();
  registerPursuit();
  registerCombat();
  registerSpread();
  registerSpreadHidden();
  registerManipulationEnvs();
  registerMultiArmEnvs();
  registerSplitEnvs();
  registerPointRobot();
  registerResource();
}
