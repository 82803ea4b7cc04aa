/* `make install PREFIX=DIR` and `pip install ./python` as a user runs them: the installed tree
 * has the libraries, the header, a pkg-config file that compiles and links a C program against
 * it (tests/vae/header_check.c, which decodes), and a Python package that decodes with the
 * installed library; `pip install ./python` into a fresh virtual environment (made from the
 * cached test environment's interpreter, which it sees through a .pth file: no network) bundles
 * the build tree's library, so the package decodes after the checkout is gone. The Python parts
 * run tests/progs/py_install_decode.py in each cached environment (tools/pyenv.sh). */
#include <sys/stat.h>

#include "python_fixture.h"

/* sh -c SCRIPT with VS_T=dir, VS_SRC (the checkout), VS_BLD (its build tree) and `extra`. */
static struct vs_run sh(const char *dir, const char *script, const char *extra)
{
    char t[300];
    snprintf(t, sizeof t, "VS_T=%s", dir);
    const char *env[] = {t, "VS_SRC=" VS_SOURCE_DIR, "VS_BLD=" VS_BUILD_DIR, extra, NULL};
    const char *argv[] = {"sh", "-c", script, NULL};
    return vs_run(argv, 0, env);
}

static void sh_ok(const char *dir, const char *what, const char *script)
{
    struct vs_run r = sh(dir, script, NULL);
    cr_assert_eq(r.status, 0, "%s: exit %d\n%s%s", what, r.status, r.out, r.raw_err);
    vs_run_free(&r);
}

/* A fresh directory with `make install PREFIX=DIR/prefix` of this build tree in it. */
static void make_install(char *dir)
{
    cr_assert(mkdtemp(dir), "mkdtemp");
    /* the outer make's jobserver flags do not reach this one */
    sh_ok(dir, "make install",
          "cd \"$VS_SRC\" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory "
          "BUILD=\"$(realpath --relative-to=. \"$VS_BLD\")\" install PREFIX=\"$VS_T/prefix\"");
}

static void remove_dir(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0, "%s", cmd);
}

static void expect_file(const char *dir, const char *path, mode_t exec)
{
    char full[400];
    struct stat st;
    snprintf(full, sizeof full, "%s/prefix/%s", dir, path);
    cr_expect(stat(full, &st) == 0 && S_ISREG(st.st_mode) && (!exec || (st.st_mode & exec)),
              "make install: no %sfile PREFIX/%s", exec ? "executable " : "", path);
}

/* Not under `make asan`: it would install the sanitized build, which users never install. */
#ifdef __SANITIZE_ADDRESS__
#define VS_ASAN 1
#else
#define VS_ASAN 0
#endif

Test(python_install, make_install_puts_libraries_header_pkgconfig_and_package, .timeout = 300,
     .disabled = VS_ASAN)
{
    char dir[] = "/tmp/vs_installXXXXXX";
    make_install(dir);
    expect_file(dir, "lib/libvramshim_vae.so", S_IXUSR);
    expect_file(dir, "include/vramshim_vae.h", 0);
    expect_file(dir, "lib/pkgconfig/vramshim_vae.pc", 0);
    expect_file(dir, "bin/vramshim", S_IXUSR); /* a link to lib/vramshim/bin/vramshim */
    expect_file(dir, "lib/vramshim/bin/libvramshim.so", S_IXUSR);
    expect_file(dir, "lib/vramshim/python/sitecustomize.py", 0);
    expect_file(dir, "lib/vramshim/comfyui/web/vramshim.js", 0);
    /* every module of the package, as in the checkout */
    struct vs_run r = sh(dir,
                         "for f in \"$VS_SRC\"/python/vramshim/*.py; do "
                         "cmp -s \"$f\" \"$VS_T/prefix/lib/vramshim/python/vramshim/${f##*/}\" || "
                         "echo \"PREFIX/lib/vramshim/python/vramshim/${f##*/} differs or is "
                         "missing\"; done; \"$VS_T/prefix/bin/vramshim\" --version",
                         NULL);
    char *version = vs_slurp(VS_SOURCE_DIR "/VERSION");
    cr_assert(version);
    char want[300];
    snprintf(want, sizeof want, "vramshim %s", version);
    cr_expect_str_eq(r.out, want);
    vs_run_free(&r);

    /* the ComfyUI node folder, linked into custom_nodes/, loads the installed package */
    r = sh(dir,
           "cd \"$VS_SRC/tests/progs/standins\" && " /* ComfyUI's modules, as stand-ins */
           "PYTHONPATH=. python3 -S -c 'import importlib.util as u, sys\n"
           "s = u.spec_from_file_location(\"vramshim_node\", sys.argv[1])\n"
           "s.loader.exec_module(u.module_from_spec(s))\n"
           "import vramshim; print(vramshim.__file__)' "
           "\"$VS_T/prefix/lib/vramshim/comfyui/__init__.py\"",
           NULL);
    snprintf(want, sizeof want, "%s/prefix/lib/vramshim/python/vramshim/__init__.py\n", dir);
    cr_expect_eq(r.status, 0, "installed ComfyUI node folder: %s", r.raw_err);
    cr_expect_str_eq(r.out, want);
    vs_run_free(&r);

    /* pkg-config's flags compile and link header_check.c against the installed tree; it runs
     * with the installed library and decodes */
    r = sh(dir,
           "export PKG_CONFIG_PATH=\"$VS_T/prefix/lib/pkgconfig\"; "
           "echo \"version $(pkg-config --modversion vramshim_vae)\"; "
           "echo cflags $(pkg-config --cflags vramshim_vae); "
           "cc -std=c99 -Wall -Wextra -Werror \"$VS_SRC/tests/vae/header_check.c\" "
           "$(pkg-config --cflags --libs vramshim_vae) -o \"$VS_T/header_check\" || exit 1; "
           "export LD_LIBRARY_PATH=\"$VS_T/prefix/lib\"; "
           "ldd \"$VS_T/header_check\" | grep -o '/[^ ]*/libvramshim_vae.so' | sed 's/^/linked /'; "
           "\"$VS_T/header_check\" \"$VS_SRC/tests/golden/sd_small.vae.safetensors\" 4",
           NULL);
    cr_assert_eq(r.status, 0, "pkg-config, compile, run: exit %d\n%s%s", r.status, r.out,
                 r.raw_err);
    char head[1200];
    snprintf(head, sizeof head, "version %scflags -I%s/prefix/include\nlinked %s/prefix/lib/"
             "libvramshim_vae.so\nplan exact", version, dir, dir);
    cr_expect(!strncmp(r.out, head, strlen(head)), "expected\n%s\ngot\n%s", head, r.out);
    vs_run_free(&r);
    free(version);
    remove_dir(dir);
}

/* "package DIR\nlibrary LIB\ndecode max-abs below 0.0001\n" of py_install_decode.py. */
static void expect_decoded(const struct vs_run *r, const char *version, const char *package,
                           const char *library)
{
    char want[1200];
    snprintf(want, sizeof want, "package %s\nlibrary %s\ndecode max-abs below 0.0001\n", package,
             library);
    cr_expect_str_eq(r->out, want, "Python %s:\n%s", version, r->raw_err);
}

static void check_installed_run(const char *python, const char *version)
{
    char dir[] = "/tmp/vs_installXXXXXX";
    make_install(dir);
    char cli[300], package[300], library[300];
    snprintf(cli, sizeof cli, "%s/prefix/bin/vramshim", dir);
    const char *env[] = {"VRAMSHIM_LOG=info", "HF_HUB_OFFLINE=1", NULL};
    const char *argv[] = {"timeout", "-k", "10", "600", cli, "run", "--decode", "exact",
                          "--decode-budget", "300KiB", "--", python,
                          VS_PYPROG("py_install_decode.py"), "hooked", NULL};
    struct vs_run r = vs_run(argv, 0, env);
    cr_expect_eq(r.status, 0, "Python %s: exit %d\n%s", version, r.status, r.raw_err);
    snprintf(package, sizeof package, "%s/prefix/lib/vramshim/python/vramshim", dir);
    snprintf(library, sizeof library, "%s/prefix/lib/libvramshim_vae.so", dir);
    expect_decoded(&r, version, package, library);
    cr_expect(strstr(r.err, "vramshim: decode diffusers AutoencoderKL.decode (cpu float32 "),
              "Python %s: no info line in\n%s", version, r.err);
    vs_run_free(&r);
    remove_dir(dir);
}

/* PREFIX/bin/vramshim run --decode exact: the installed package and library decode. */
Test(python_install, installed_vramshim_run_decodes_with_the_installed_library, .timeout = 900)
{
    vs_each_pyenv(check_installed_run);
}

static void check_pip(const char *python, const char *version)
{
    char dir[] = "/tmp/vs_pipXXXXXX", py[300], extra[320];
    cr_assert(mkdtemp(dir), "mkdtemp");
    snprintf(extra, sizeof extra, "VS_PY=%s", python);
    /* a copy of the checkout's python/ beside a link to its build tree, so that the build
     * pip runs in the source folder leaves nothing in the checkout */
    struct vs_run r = sh(
        dir,
        "set -e; \"$VS_PY\" -m venv --without-pip \"$VS_T/venv\"; "
        "site() { \"$1\" -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))'; }; "
        "site \"$VS_PY\" > \"$(site \"$VS_T/venv/bin/python\")/vs_cached_env.pth\"; "
        "mkdir \"$VS_T/src\"; cp -r \"$VS_SRC/python\" \"$VS_T/src/\"; "
        "ln -s \"$VS_BLD\" \"$VS_T/src/build\"; "
        "\"$VS_PY\" -m pip --python \"$VS_T/venv/bin/python\" install -q --no-index "
        "--no-build-isolation \"$VS_T/src/python\"; "
        "rm -rf \"$VS_T/src\"; site \"$VS_T/venv/bin/python\"",
        extra);
    cr_assert_eq(r.status, 0, "Python %s: pip install: exit %d\n%s%s", version, r.status, r.out,
                 r.raw_err);
    char site[300], package[320], library[360];
    snprintf(site, sizeof site, "%.*s", (int)strcspn(r.out, "\n"), r.out);
    vs_run_free(&r);
    snprintf(package, sizeof package, "%s/vramshim", site);
    snprintf(library, sizeof library, "%s/libvramshim_vae.so", package);
    snprintf(py, sizeof py, "%s/venv/bin/python", dir);
    const char *env[] = {"HF_HUB_OFFLINE=1", NULL};
    const char *argv[] = {"timeout", "-k", "10", "600", py, VS_PYPROG("py_install_decode.py"),
                          "direct", NULL};
    r = vs_run(argv, 0, env);
    cr_expect_eq(r.status, 0, "Python %s: exit %d\n%s", version, r.status, r.raw_err);
    expect_decoded(&r, version, package, library);
    vs_run_free(&r);
    /* no library where VRAMSHIM_VAE_LIB says: the error names it */
    const char *env_missing[] = {"VRAMSHIM_VAE_LIB=/nonexistent/libvramshim_vae.so", NULL};
    const char *load[] = {py, "-c", "import vramshim._vae as v\ntry:\n    v.library()\n"
                          "except v.Error as e:\n    print(e)", NULL};
    r = vs_run(load, 0, env_missing);
    cr_expect_str_eq(r.out, "libvramshim_vae.so not found (tried "
                            "/nonexistent/libvramshim_vae.so)\n", "Python %s", version);
    vs_run_free(&r);
    remove_dir(dir);
}

/* pip install ./python into a fresh virtual environment, offline. */
Test(python_install, pip_install_python_bundles_the_library, .timeout = 900)
{
    vs_each_pyenv(check_pip);
}
