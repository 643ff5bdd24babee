import { NATIVE_TF_DEFAULTS, SET_BY_TROUPE_VAR, applyNativeTfDefaults, nativeTfSettings } from '../runtime/core/tf-native-env';

/* tfjs-node's thread and oneDNN settings: troupe's defaults fill only what the user left unset. */

describe('applyNativeTfDefaults', () => {
  test('sets every unset variable and records that troupe set it', () => {
    const env: NodeJS.ProcessEnv = {};
    const settings = applyNativeTfDefaults(env);
    for (const [name, value] of Object.entries(NATIVE_TF_DEFAULTS)) expect(env[name]).toBe(value);
    expect(settings.values).toEqual(NATIVE_TF_DEFAULTS);
    expect(settings.setByTroupe.sort()).toEqual(Object.keys(NATIVE_TF_DEFAULTS).sort());
  });

  test("the user's values win, even empty ones, and are not counted as troupe's", () => {
    const env: NodeJS.ProcessEnv = { TF_NUM_INTRAOP_THREADS: '4', TF_ENABLE_ONEDNN_OPTS: '' };
    const settings = applyNativeTfDefaults(env);
    expect(env.TF_NUM_INTRAOP_THREADS).toBe('4');
    expect(env.TF_ENABLE_ONEDNN_OPTS).toBe('');
    expect(settings.values.TF_NUM_INTRAOP_THREADS).toBe('4');
    expect(settings.setByTroupe).not.toContain('TF_NUM_INTRAOP_THREADS');
    expect(settings.setByTroupe).not.toContain('TF_ENABLE_ONEDNN_OPTS');
    expect(settings.setByTroupe).toContain('TF_NUM_INTEROP_THREADS');
  });

  test('a child process that inherits the defaults still records them as troupe\'s', () => {
    const parent: NodeJS.ProcessEnv = {};
    applyNativeTfDefaults(parent);
    const child: NodeJS.ProcessEnv = { ...parent };
    expect(applyNativeTfDefaults(child).setByTroupe.sort()).toEqual(Object.keys(NATIVE_TF_DEFAULTS).sort());
    expect(nativeTfSettings({ [SET_BY_TROUPE_VAR]: 'TF_NUM_INTRAOP_THREADS,SOMETHING_ELSE' }).setByTroupe).toEqual(['TF_NUM_INTRAOP_THREADS']);
  });
});
