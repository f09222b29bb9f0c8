/* gettext shorthands shared by the engine, the CLI and the UI. */
#ifndef SK_I18N_H
#define SK_I18N_H

#include <libintl.h>

#define _(s) gettext(s)
#define N_(s) (s)

#endif
