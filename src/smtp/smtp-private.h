/* Private to src/smtp. */
#ifndef SEALPOST_SMTP_PRIVATE_H
#define SEALPOST_SMTP_PRIVATE_H

#include "smtp.h"

#endif
